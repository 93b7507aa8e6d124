import type { MigrationSet } from '../migrate.js';
import { foundation } from './0001-foundation.js';
import { keyconfig } from './0002-keyconfig.js';
import { audit } from './0003-audit.js';

/** The convault schema. Names sort in the order they run; never edit one that has shipped. */
export const convaultMigrations: MigrationSet = {
  tableName: 'convault_migrations',
  migrations: {
    '0001-foundation': foundation,
    '0002-keyconfig': keyconfig,
    '0003-audit': audit,
  },
};
