import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase, type DatabaseHandle, type OpenDatabaseOptions } from '../src/store/database.js';
import { SAFETY_NET_AUTOCHECKPOINT_PAGES, startWalCheckpointer } from '../src/store/wal-checkpointer.js';

// SQLite WAL checkpoints in a worker thread (src/store/wal-checkpointer.ts): commits on the serving
// connection no longer copy the WAL into the database file; the worker does, and a worker that is
// gone leaves the safety net, never an unbounded WAL.

const PAGE = 4096;
const dirs: string[] = [];
const handles: Array<DatabaseHandle<any>> = [];

afterEach(async () => {
  for (const h of handles.splice(0)) await h.close().catch(() => undefined);
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function open(opts: Partial<OpenDatabaseOptions> = {}): Promise<{ handle: DatabaseHandle<any>; file: string; dataDir: string }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'convault-wal-'));
  dirs.push(dataDir);
  const handle = await openDatabase<any>({ dataDir, sqliteCheckpoint: 'background', ...opts });
  handles.push(handle);
  await sql`create table rows (id integer primary key, body blob not null)`.execute(handle.db);
  return { handle, file: path.join(dataDir, 'convault.db'), dataDir };
}

/** `n` commits of one page-sized row each, as a request path writes: many small transactions. */
async function writeRows(db: Kysely<any>, n: number, from = 0): Promise<void> {
  const body = Buffer.alloc(PAGE - 200, 7);
  for (let i = 0; i < n; i++) await sql`insert into rows (id, body) values (${from + i}, ${body})`.execute(db);
}

const size = (file: string) => (fs.existsSync(file) ? fs.statSync(file).size : 0);

async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('SQLite WAL checkpoints off the event loop', () => {
  it('commits do not checkpoint: with the worker idle, 3,000 pages stay in the WAL and the database file does not grow', async () => {
    const { handle, file } = await open({ sqliteCheckpointIntervalMs: 3_600_000 });
    expect(handle.checkpoints!().mode).toBe('background');
    const before = size(file);
    await writeRows(handle.db, 3000);
    expect(size(file)).toBe(before);
    expect(size(`${file}-wal`)).toBeGreaterThan(3000 * PAGE);
    const [{ wal_autocheckpoint: net }] = (await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(handle.db)).rows as Array<{ wal_autocheckpoint: number }>;
    expect(net).toBe(SAFETY_NET_AUTOCHECKPOINT_PAGES);
  });

  it('inline mode leaves it to the commits, as SQLite does by default: the same writes reach the database file', async () => {
    const { handle, file } = await open({ sqliteCheckpoint: 'inline' });
    expect(handle.checkpoints!().mode).toBe('inline');
    await writeRows(handle.db, 3000);
    expect(size(file)).toBeGreaterThan(1000 * PAGE);
    // The automatic checkpoint restarts the WAL from its start: it never holds the 3,000 pages.
    expect(size(`${file}-wal`)).toBeLessThan(2000 * PAGE);
  });

  it('the worker copies the WAL into the database file while nothing else touches the database, and every row is there after a reopen', async () => {
    const { handle, file, dataDir } = await open({ sqliteCheckpointIntervalMs: 20 });
    await writeRows(handle.db, 3000);
    // No statement runs on the serving connection from here on: only the worker can fill the file.
    await until(() => size(file) > 3000 * (PAGE - 200), 'the worker to checkpoint');
    await until(() => handle.checkpoints!().framesCheckpointed >= 3000, 'the frame count');
    expect(handle.checkpoints!().runs).toBeGreaterThan(0);
    await handle.close();
    handles.splice(handles.indexOf(handle), 1);

    const again = await openDatabase<any>({ dataDir, sqliteCheckpoint: 'inline' });
    handles.push(again);
    const { rows } = await sql<{ n: number; bytes: number }>`select count(*) as n, sum(length(body)) as bytes from rows`.execute(again.db);
    expect(rows[0]).toEqual({ n: 3000, bytes: 3000 * (PAGE - 200) });
  });

  it('a worker that is gone leaves the safety net: past its page count the commits checkpoint, so the WAL stays bounded', async () => {
    const { handle, file } = await open({ sqliteCheckpointIntervalMs: 3_600_000 });
    await writeRows(handle.db, SAFETY_NET_AUTOCHECKPOINT_PAGES + 2000);
    expect(size(file)).toBeGreaterThan(SAFETY_NET_AUTOCHECKPOINT_PAGES * (PAGE - 200));
    expect(size(`${file}-wal`)).toBeLessThan((SAFETY_NET_AUTOCHECKPOINT_PAGES + 500) * (PAGE + 24));
  }, 60_000);

  it('a worker that dies is started again and goes on checkpointing', async () => {
    const { handle, file } = await open({ sqliteCheckpoint: 'inline' });
    // A second connection's checkpointer on the same file, as `openDatabase` starts one.
    const errors: string[] = [];
    const checkpointer = startWalCheckpointer({ file, intervalMs: 20, restartDelayMs: 50, onError: (m) => errors.push(m) });
    try {
      await until(() => checkpointer.stats().runs > 0, 'a first checkpoint');
      await checkpointer.killWorker();
      await until(() => checkpointer.stats().restarts === 1, 'the restart');
      const runs = checkpointer.stats().runs;
      await writeRows(handle.db, 500);
      await until(() => checkpointer.stats().runs > runs + 2 && checkpointer.stats().framesCheckpointed >= 500, 'checkpoints after the restart');
      expect(errors).toEqual([]);
    } finally {
      await checkpointer.close();
    }
    // Closed: it is not started again.
    const { restarts } = checkpointer.stats();
    await new Promise((r) => setTimeout(r, 200));
    expect(checkpointer.stats().restarts).toBe(restarts);
  });
});
