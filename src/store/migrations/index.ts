import type { MigrationSet } from '../migrate.js';
import { foundation } from './0001-foundation.js';

/** The convault schema. Names sort in the order they run; never edit one that has shipped. */
export const convaultMigrations: MigrationSet = {
  tableName: 'convault_migrations',
  migrations: {
    '0001-foundation': foundation,
  },
};
