import { sql, type Kysely } from 'kysely';
import { StoreUnavailableError, toStoreError } from './store-faults.js';

/**
 * `select 1`, answered within `timeoutMs` or reported as unreachable: a readiness probe must
 * answer quickly even when the database host swallows packets instead of refusing them.
 */
export async function pingStore<DB>(db: Kysely<DB>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreUnavailableError('unreachable', 'PING_TIMEOUT')), timeoutMs);
    timer.unref();
  });
  try {
    await Promise.race([sql`select 1`.execute(db), timedOut]);
  } catch (err) {
    const fault = toStoreError(err);
    throw fault instanceof StoreUnavailableError ? fault : new StoreUnavailableError('unreachable', undefined);
  } finally {
    clearTimeout(timer);
  }
}
