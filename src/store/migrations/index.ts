import type { MigrationSet } from '../migrate.js';
import { foundation } from './0001-foundation.js';
import { keyconfig } from './0002-keyconfig.js';
import { audit } from './0003-audit.js';
import { securedData } from './0004-secured-data.js';
import { lifecycle } from './0005-lifecycle.js';
import { keyHealth } from './0006-key-health.js';
import { auditSealing } from './0007-audit-sealing.js';
import { tokenLifecycle } from './0008-token-lifecycle.js';
import { operations } from './0009-operations.js';
import { rewrapSingleActive } from './0010-rewrap-single-active.js';
import { localKeyManager } from './0011-local-key-manager.js';
import { auditActionByPos } from './0012-audit-action-by-pos.js';

/** The convault schema. Names sort in the order they run; never edit one that has shipped. */
export const convaultMigrations: MigrationSet = {
  tableName: 'convault_migrations',
  migrations: {
    '0001-foundation': foundation,
    '0002-keyconfig': keyconfig,
    '0003-audit': audit,
    '0004-secured-data': securedData,
    '0005-lifecycle': lifecycle,
    '0006-key-health': keyHealth,
    '0007-audit-sealing': auditSealing,
    '0008-token-lifecycle': tokenLifecycle,
    '0009-operations': operations,
    '0010-rewrap-single-active': rewrapSingleActive,
    '0011-local-key-manager': localKeyManager,
    '0012-audit-action-by-pos': auditActionByPos,
  },
};
