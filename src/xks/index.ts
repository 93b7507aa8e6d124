import { openDatabase } from '../store/database.js';
import { runMigrations } from '../store/migrate.js';
import { createCredentialStore } from './credentials.js';
import { createKeyAdmin } from './key-admin.js';
import { xksMigrations } from './migrations.js';
import { createXksOperations, type XksBackends } from './operations.js';
import { openPkcs11Backend, type Pkcs11Options } from './pkcs11-backend.js';
import { loadXksRootKey } from './root-key.js';
import { startXksServer, type XksRequestLog, type XksServer, type XksTlsOptions } from './server.js';
import { createSoftwareBackend } from './software-backend.js';
import { createXksStore, type XksDatabase } from './store.js';

/**
 * The reference XKS proxy: keys and credentials in `<dataDir>/xks.db` (its own SQLite file, sealed
 * under `<dataDir>/xks-root.key`), key material there or in a PKCS#11 token.
 */

export { XksAdminError, KEY_USAGE_CHOICES } from './key-admin.js';
export type { XksKeyView } from './key-admin.js';
export type { XksCredentials } from './credentials.js';
export { Pkcs11SetupError } from './pkcs11-backend.js';
export type { Pkcs11Options } from './pkcs11-backend.js';
export type { XksRequestLog, XksServer, XksTlsOptions } from './server.js';

export const XKS_DB_FILE = 'xks.db';

export async function openXksProxy(opts: { dataDir: string; pkcs11?: Pkcs11Options }) {
  const rootKey = loadXksRootKey(opts.dataDir);
  const database = await openDatabase<XksDatabase>({ dataDir: opts.dataDir, fileName: XKS_DB_FILE });
  let pkcs11: XksBackends['pkcs11'];
  try {
    await runMigrations(database.db, database.dialect, xksMigrations);
    if (opts.pkcs11) pkcs11 = openPkcs11Backend(opts.pkcs11);
  } catch (err) {
    await database.close();
    throw err;
  }
  const store = createXksStore(database.db);
  const backends: XksBackends = { software: createSoftwareBackend(rootKey), ...(pkcs11 ? { pkcs11 } : {}) };
  const credentials = createCredentialStore({ store, rootKey });
  const operations = createXksOperations({ store, backends });
  let closed = false;
  return {
    location: database.location,
    keys: createKeyAdmin({ store, backends }),
    credentials,
    operations,
    /** Serves the API; close the returned server before closing the proxy. */
    serve(serverOpts: { host: string; port: number; tls?: XksTlsOptions; log?: (entry: XksRequestLog) => void }): Promise<XksServer> {
      return startXksServer({ ...serverOpts, operations, secretFor: credentials.secretFor });
    },
    /** Idempotent. */
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await pkcs11?.close();
      await database.close();
    },
  };
}

export type XksProxy = Awaited<ReturnType<typeof openXksProxy>>;
