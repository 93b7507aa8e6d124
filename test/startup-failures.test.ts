import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from './support/databases.js';
import { CLI, freePort } from './support/process.js';

/**
 * Each way `convault serve` cannot start is one line on stderr naming the setting to change, and
 * exit code 2 (a configuration problem), never a stack trace or a bare ECONNREFUSED.
 */

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

const dirs: string[] = [];
const holders: net.Server[] = [];
afterAll(async () => {
  for (const h of holders) await new Promise((r) => h.close(r));
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function dataDir(): string {
  const dir = tempDir('convault-startup-');
  dirs.push(dir);
  return dir;
}

async function holdPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  holders.push(server);
  return (server.address() as net.AddressInfo).port;
}

/** `convault serve` with only the given environment (plus a free PORT and local KMS port unless given). */
async function serve(env: Record<string, string>, opts: { uid?: number; gid?: number } = {}): Promise<Outcome> {
  const base: Record<string, string> = { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', LOG_LEVEL: 'warn' };
  if (!env.PORT) base.PORT = String(await freePort());
  if (!env.CONVAULT_LOCAL_KMS_PORT) base.CONVAULT_LOCAL_KMS_PORT = String(await freePort());
  const proc = spawn(process.execPath, [CLI, 'serve'], { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d) => (stdout += d));
  proc.stderr.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => proc.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

function expectOneLine(outcome: Outcome, pattern: RegExp): void {
  expect(outcome.code).toBe(2);
  expect(outcome.stdout).not.toMatch(/serving at/);
  const lines = outcome.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^convault: /);
  expect(lines[0]).toMatch(pattern);
}

describe.concurrent('start-up failures name the setting (exit code 2)', () => {
  it('an unreachable DATABASE_URL', async () => {
    const closed = await freePort();
    const outcome = await serve({ CONVAULT_DATA_DIR: dataDir(), DATABASE_URL: `postgres://convault:secret@127.0.0.1:${closed}/convault` });
    expectOneLine(outcome, new RegExp(`Cannot use the database in DATABASE_URL \\(postgres://convault:\\*\\*\\*@127\\.0\\.0\\.1:${closed}/convault\\): .*ECONNREFUSED.*unset DATABASE_URL`));
    expect(outcome.stderr).not.toContain('secret');
  });

  it('a HOST that is no address of this machine', async () => {
    const outcome = await serve({ CONVAULT_DATA_DIR: dataDir(), HOST: 'no-such-host.invalid' });
    expectOneLine(outcome, /Invalid HOST: cannot listen on "no-such-host\.invalid" \((ENOTFOUND|EAI_AGAIN)\): set HOST \(--host\)/);
  });

  it('a data dir this user cannot write, with the path and the permission needed', async () => {
    const parent = dataDir();
    fs.chmodSync(parent, 0o755);
    const dir = path.join(parent, 'locked');
    fs.mkdirSync(dir, { mode: 0o555 });
    fs.chmodSync(dir, 0o555);
    // root may write anywhere: then the server runs as nobody, as an unprivileged operator would —
    // if nobody can read this checkout; otherwise (a checkout under /root) a data dir below a regular
    // file stands in, which no user can create.
    const asRoot = process.getuid?.() === 0;
    const nobody = { uid: 65534, gid: 65534 };
    const nobodyCanRun = asRoot && spawnSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(CLI)})`], nobody).status === 0;
    const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    if (!asRoot || nobodyCanRun) {
      const outcome = await serve({ CONVAULT_DATA_DIR: dir }, asRoot ? nobody : {});
      expectOneLine(outcome, new RegExp(`CONVAULT_DATA_DIR ${escape(dir)} is not writable \\(EACCES\\): user \\S+ needs write and execute permission on it`));
      expect(fs.readdirSync(dir)).toEqual([]);
    } else {
      const file = path.join(parent, 'a-file');
      fs.writeFileSync(file, '');
      const below = path.join(file, 'data');
      const outcome = await serve({ CONVAULT_DATA_DIR: below });
      expectOneLine(outcome, new RegExp(`CONVAULT_DATA_DIR ${escape(below)} is not writable \\(ENOTDIR\\): user \\S+ needs write and execute permission on it`));
    }
  });

  it('PORT already in use', async () => {
    const port = await holdPort();
    const outcome = await serve({ CONVAULT_DATA_DIR: dataDir(), PORT: String(port) });
    expectOneLine(outcome, new RegExp(`PORT ${port} is already in use on 127\\.0\\.0\\.1 \\(EADDRINUSE\\).*set PORT \\(--port\\)`));
  });

  it("the local KMS's port already in use (a second start next to a running server)", async () => {
    const port = await holdPort();
    const outcome = await serve({ CONVAULT_DATA_DIR: dataDir(), CONVAULT_LOCAL_KMS_PORT: String(port) });
    expectOneLine(outcome, new RegExp(`CONVAULT_LOCAL_KMS_PORT ${port}, the embedded local KMS's port \\(CONVAULT_LOCAL_KMS_PORT\\), is already in use \\(EADDRINUSE\\)`));
  });
});
