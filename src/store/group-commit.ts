// Group commit for SQLite: concurrent write requests share one transaction, so one commit (and,
// with synchronous = FULL, one WAL sync) acknowledges all of them. Each request runs inside a
// savepoint of the shared transaction: one that fails is rolled back to its savepoint and fails
// alone, the others' writes stay and commit. Every request is answered only after the shared
// transaction committed (or failed as a whole, when the commit itself fails).
//
// SQLite has one writer; Kysely runs everything on one connection. A batch starts one turn of the
// event loop after its first request was queued, so every request already received by then joins
// it; requests that arrive while it runs form the next batch — under load the batches grow by
// themselves, and a lone request waits one loop turn.

import { CompiledQuery, type Kysely, type Transaction } from 'kysely';

export interface GroupCommitter<DB> {
  /** Runs `fn` in a savepoint of the next shared transaction; resolves with its result after the commit. */
  run<T>(fn: (trx: Transaction<DB>) => Promise<T>): Promise<T>;
  stats(): { batches: number; requests: number; largestBatch: number };
}

interface Job<DB> {
  fn: (trx: Transaction<DB>) => Promise<unknown>;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

/** The savepoint statements of a batch's requests, written once (they are on every write's path). */
const SAVEPOINTS = Array.from({ length: 256 }, (_, i) => ({
  open: CompiledQuery.raw(`savepoint "group_${i}"`),
  release: CompiledQuery.raw(`release "group_${i}"`),
  rollback: CompiledQuery.raw(`rollback to "group_${i}"`),
}));

export interface GroupCommitOptions {
  /**
   * Requests per shared transaction at most (default 16). A batch runs synchronously on SQLite, so
   * its size is also how long it holds the event loop: past a few milliseconds of work the tail
   * latency of every other request grows more than one more commit would cost.
   */
  maxBatch?: number;
  /** Called once per shared transaction with the number of requests it carried (metrics). */
  onBatch?: (size: number) => void;
}

export function createGroupCommitter<DB>(db: Kysely<DB>, opts: GroupCommitOptions = {}): GroupCommitter<DB> {
  const maxBatch = Math.min(opts.maxBatch ?? 16, SAVEPOINTS.length);
  const queue: Job<DB>[] = [];
  let running = false;
  const stats = { batches: 0, requests: 0, largestBatch: 0 };

  async function runBatch(jobs: Job<DB>[]): Promise<void> {
    const outcomes: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    try {
      await db.transaction().execute(async (trx) => {
        for (let i = 0; i < jobs.length; i++) {
          const sp = SAVEPOINTS[i]!;
          await trx.executeQuery(sp.open);
          try {
            const value = await jobs[i]!.fn(trx);
            await trx.executeQuery(sp.release);
            outcomes.push({ ok: true, value });
          } catch (error) {
            // Undo this request's writes only; the transaction goes on for the others.
            await trx.executeQuery(sp.rollback);
            await trx.executeQuery(sp.release);
            outcomes.push({ ok: false, error });
          }
        }
      });
    } catch (error) {
      // The shared transaction did not commit: nothing of it is stored, every request fails.
      for (const job of jobs) job.reject(error);
      return;
    }
    jobs.forEach((job, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) job.resolve(outcome.value);
      else job.reject(outcome.error);
    });
  }

  async function drain(): Promise<void> {
    running = true;
    try {
      while (queue.length > 0) {
        const jobs = queue.splice(0, maxBatch);
        stats.batches++;
        stats.requests += jobs.length;
        stats.largestBatch = Math.max(stats.largestBatch, jobs.length);
        opts.onBatch?.(jobs.length);
        await runBatch(jobs);
      }
    } finally {
      running = false;
    }
  }

  return {
    run<T>(fn: (trx: Transaction<DB>) => Promise<T>): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        queue.push({ fn, resolve: resolve as (v: unknown) => void, reject });
        if (!running) {
          running = true;
          // better-sqlite3 is synchronous: a batch started right here would run to its commit
          // before the event loop reads another request, and every batch would hold one request.
          // One turn of the loop lets the requests already received reach this queue first.
          setImmediate(() => void drain());
        }
      });
    },
    stats: () => ({ ...stats }),
  };
}
