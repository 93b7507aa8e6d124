import { setTimeout as sleep } from 'node:timers/promises';
import type { Kysely, Transaction } from 'kysely';
import { isRetryableConflict, StoreUnavailableError } from './store-faults.js';

const MAX_ATTEMPTS = 4;

/**
 * Runs `fn` in a transaction; a serialization failure or deadlock (PostgreSQL rolled the whole
 * transaction back) runs it again, up to MAX_ATTEMPTS times with a short random pause, then gives
 * up with StoreUnavailableError('conflict'). `fn` must therefore only touch the database (work
 * done before the transaction, such as KMS calls, is not repeated). A lost connection is not
 * retried: the outcome of a COMMIT in flight is unknown, so the caller hears 503 and decides.
 */
export async function inTransaction<DB, T>(db: Kysely<DB>, fn: (trx: Transaction<DB>) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction().execute(fn);
    } catch (err) {
      const conflict = isRetryableConflict(err) || (err instanceof StoreUnavailableError && err.reason === 'conflict');
      if (!conflict) throw err;
      if (attempt >= MAX_ATTEMPTS) throw err instanceof StoreUnavailableError ? err : new StoreUnavailableError('conflict', (err as { code?: string }).code);
      await sleep(Math.floor(Math.random() * 20 * attempt));
    }
  }
}
