// SQLite WAL checkpoints off the event loop. With `synchronous = NORMAL` a commit only appends to
// the WAL; the expensive part — copying the WAL's pages back into the database file and syncing it
// — is the checkpoint, which SQLite otherwise runs inside whichever commit crosses
// `wal_autocheckpoint` (1,000 pages). On the request path that is a stall of every in-flight
// request every few hundred commits. Here a worker thread with its own connection to the same file
// runs PASSIVE checkpoints (they never block the writer or readers) at a short interval, so the
// WAL stays small and the serving thread never checkpoints.
//
// The serving connection keeps a large `wal_autocheckpoint` as a safety net: a worker that stalls,
// fails or is restarting cannot let the WAL grow without bound; the serving thread then checkpoints
// as it would have without a worker. Durability does not change: a commit is durable by its WAL
// append (and, with FULL, the WAL sync) whoever checkpoints later, and SQLite's checkpoint is safe
// against a crash at any point.

import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

export interface WalCheckpointStats {
  mode: 'background' | 'inline';
  /** Checkpoints the worker ran (PASSIVE; one with nothing to copy counts too). */
  runs: number;
  /**
   * WAL frames the worker copied into the database file, in total — a lower bound: PASSIVE reports
   * frames backfilled in the current WAL, and a WAL that restarted and grew past the previous count
   * between two runs is counted from the previous count.
   */
  framesCheckpointed: number;
  /** Times the worker failed and was started again. */
  restarts: number;
  /** The last failure's message, if any (a database path, never data). */
  lastError: string | null;
}

export interface WalCheckpointer {
  stats(): WalCheckpointStats;
  close(): Promise<void>;
}

export interface WalCheckpointerOptions {
  /** The SQLite database file (the WAL is `${file}-wal`). */
  file: string;
  /** Milliseconds between checkpoints (default 100). */
  intervalMs?: number;
  /** Told about a worker failure (it is restarted after `restartDelayMs`). */
  onError?: (message: string) => void;
  /** Default 1,000 ms. */
  restartDelayMs?: number;
}

/** `wal_autocheckpoint` of the serving connection while a worker checkpoints: 10,000 pages (≈ 40 MB with 4 KiB pages). */
export const SAFETY_NET_AUTOCHECKPOINT_PAGES = 10_000;

// The worker is a script, not a module file: it must run the same from src/ under the test runner
// and from dist/. The driver is resolved here and handed over by absolute path.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = 0');
let timer;
let stopped = false;
function tick() {
  if (stopped) return;
  const [result] = db.pragma('wal_checkpoint(PASSIVE)');
  parentPort.postMessage({ type: 'checkpoint', checkpointed: Math.max(0, Number(result.checkpointed)) });
  timer = setTimeout(tick, workerData.intervalMs);
}
parentPort.on('message', (message) => {
  if (message === 'stop') {
    stopped = true;
    clearTimeout(timer);
    db.close();
    parentPort.close();
  }
});
timer = setTimeout(tick, workerData.intervalMs);
`;

const driverPath = createRequire(import.meta.url).resolve('better-sqlite3');

export function startWalCheckpointer(opts: WalCheckpointerOptions): WalCheckpointer & { /** Ends the running worker as a crash would (tests: it must be started again). */ killWorker(): Promise<void> } {
  const stats: WalCheckpointStats = { mode: 'background', runs: 0, framesCheckpointed: 0, restarts: 0, lastError: null };
  let worker: Worker | undefined;
  let closing = false;
  let restartTimer: NodeJS.Timeout | undefined;
  // Frames counted so far in the current WAL generation: PASSIVE reports how many of the WAL's
  // frames are checkpointed in total, which falls back to a small number when the WAL restarts.
  let lastCheckpointed = 0;

  const start = () => {
    const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver: driverPath, file: opts.file, intervalMs: opts.intervalMs ?? 100 } });
    // The serving process decides when to end; a checkpoint loop never keeps it alive.
    w.unref();
    w.on('message', (m: { type: string; checkpointed: number }) => {
      if (m.type !== 'checkpoint') return;
      stats.runs++;
      stats.framesCheckpointed += m.checkpointed >= lastCheckpointed ? m.checkpointed - lastCheckpointed : m.checkpointed;
      lastCheckpointed = m.checkpointed;
    });
    w.on('error', (err) => {
      stats.lastError = err instanceof Error ? err.message : String(err);
      opts.onError?.(stats.lastError);
    });
    w.on('exit', () => {
      if (worker !== w) return;
      worker = undefined;
      if (closing) return;
      stats.restarts++;
      lastCheckpointed = 0;
      restartTimer = setTimeout(() => {
        restartTimer = undefined;
        if (!closing) worker = start();
      }, opts.restartDelayMs ?? 1_000);
      restartTimer.unref();
    });
    return w;
  };
  worker = start();

  return {
    stats: () => ({ ...stats }),
    killWorker: async () => void (await worker?.terminate()),
    async close() {
      closing = true;
      if (restartTimer) clearTimeout(restartTimer);
      const w = worker;
      worker = undefined;
      if (!w) return;
      const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
      w.postMessage('stop');
      // A worker inside a long checkpoint finishes it first; one that does not answer is ended.
      const timeout = setTimeout(() => void w.terminate(), 5_000);
      await exited;
      clearTimeout(timeout);
    },
  };
}
