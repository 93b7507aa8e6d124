import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './processes.js';

/**
 * A PostgreSQL cluster of a test's (or the soak's) own: initdb into a temporary directory, started
 * on a free port with its socket in that directory, so it may be stopped, restarted or killed
 * without touching the shared server on 5432. As root (tests here run as root) every server command runs as the
 * `postgres` OS user, because PostgreSQL refuses to run as root.
 */
export interface PrivatePostgres {
  /** postgres://postgres@127.0.0.1:PORT/postgres (trust authentication, loopback only). */
  url: string;
  port: number;
  dir: string;
  /** pg_ctl stop -m fast: disconnects every client with 57P01, as a restart or failover does. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stop then start (what `pg_ctlcluster … restart` does); resolves once it accepts connections again. */
  restart(): Promise<void>;
  /** SQL as the superuser on a connection of its own. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
  /** Stops the server (immediately) and removes its directory. */
  destroy(): Promise<void>;
}

/** The newest PostgreSQL server binaries on this machine, or undefined. */
export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!fs.existsSync(root)) return undefined;
  const versions = fs
    .readdirSync(root)
    .filter((v) => fs.existsSync(path.join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? path.join(root, versions[0], 'bin') : undefined;
}

/**
 * Whether the private-cluster suites can run. Without initdb they are skipped with the returned
 * reason, except under CI=true, where a missing initdb fails the run.
 */
export function privatePostgresSkipReason(): string | undefined {
  if (postgresBinDir()) return undefined;
  if (process.env.CI === 'true') throw new Error('CI=true but no PostgreSQL server binaries (initdb) under /usr/lib/postgresql/*/bin');
  return 'private PostgreSQL cluster suites SKIPPED: no initdb under /usr/lib/postgresql/*/bin (install postgresql to run them)';
}

const asRoot = process.getuid?.() === 0;
const execFileAsync = promisify(execFile);

/** Runs a server command without blocking the event loop, so a test's clients keep running meanwhile. */
async function runAsPostgres(bin: string, args: string[], opts: { allowFailure?: boolean } = {}): Promise<void> {
  const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  try {
    await execFileAsync(cmd, argv, { encoding: 'utf8', timeout: 60_000 });
  } catch (err) {
    if (opts.allowFailure) return;
    const e = err as { code?: unknown; stderr?: string; stdout?: string };
    throw new Error(`${path.basename(bin)} ${args.join(' ')} failed (${String(e.code)}): ${e.stderr || e.stdout}`);
  }
}

export interface PrivatePostgresOptions {
  /** Server settings (`-c name=value`) over the defaults below. */
  settings?: Record<string, string>;
}

export async function startPrivatePostgres(opts: PrivatePostgresOptions = {}): Promise<PrivatePostgres> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql/*/bin');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convault-pg-'));
  const data = path.join(dir, 'data');
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    fs.chownSync(dir, uid, gid);
  }
  fs.chmodSync(dir, 0o700);
  await runAsPostgres(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '--no-instructions', '-E', 'UTF8']);
  const port = await freePort();
  // Small and quick by default: no fsync (the data is thrown away), loopback and the private socket only.
  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    shared_buffers: '16MB',
    max_connections: '40',
    ...opts.settings,
  };
  const serverOptions = [`-p ${port}`, `-k ${dir}`, ...Object.entries(settings).map(([k, v]) => `-c ${k}=${v}`)].join(' ');
  const pgCtl = (action: string, ...extra: string[]): Promise<void> =>
    runAsPostgres(path.join(bin, 'pg_ctl'), ['-D', data, '-l', path.join(dir, 'server.log'), '-o', serverOptions, '-w', '-t', '30', ...extra, action]);
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;

  await pgCtl('start');
  let running = true;
  return {
    url,
    port,
    dir,
    async stop() {
      await pgCtl('stop', '-m', 'fast');
      running = false;
    },
    async start() {
      await pgCtl('start');
      running = true;
    },
    async restart() {
      await pgCtl('restart', '-m', 'fast');
      running = true;
    },
    async query(text, values) {
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
      await client.connect();
      try {
        return await client.query(text, values);
      } finally {
        await client.end();
      }
    },
    async destroy() {
      if (running) await runAsPostgres(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop'], { allowFailure: true });
      running = false;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
