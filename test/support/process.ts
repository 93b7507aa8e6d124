import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';

export const CLI = path.resolve('dist/src/cli/main.js');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface ServeProcess {
  proc: ChildProcess;
  url: string;
  stdout(): string;
  stderr(): string;
  /** SIGTERM, resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `convault serve` as a real process and waits until it prints its URL. */
export async function spawnServe(env: Record<string, string>, timeoutMs = 30_000, cwd?: string): Promise<ServeProcess> {
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const kmsPort = env.CONVAULT_LOCAL_KMS_PORT ? Number(env.CONVAULT_LOCAL_KMS_PORT) : await freePort();
  const proc = spawn(process.execPath, [CLI, 'serve'], {
    env: { ...cleanEnv(), HOST: '127.0.0.1', LOG_LEVEL: 'warn', PORT: String(port), CONVAULT_LOCAL_KMS_PORT: String(kmsPort), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(cwd ? { cwd } : {}),
  });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start in time\nstdout: ${out}\nstderr: ${err}`)), timeoutMs);
    const check = () => {
      if (/serving at/.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout!.on('data', check);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code}\nstdout: ${out}\nstderr: ${err}`));
    });
  });
  return {
    proc,
    url: `http://127.0.0.1:${port}`,
    stdout: () => out,
    stderr: () => err,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null) proc.kill(signal);
      return exited;
    },
  };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI (`node dist/src/cli/main.js`, or `opts.command` such as the checkout's ./convault wrapper). */
export async function runCli(args: string[], env: Record<string, string>, timeoutMs = 60_000, opts: { cwd?: string; command?: string } = {}): Promise<CliResult> {
  const [file, prefix] = opts.command ? [opts.command, []] : [process.execPath, [CLI]];
  const proc = spawn(file, [...prefix, ...args], { env: { ...cleanEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'], ...(opts.cwd ? { cwd: opts.cwd } : {}) });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d) => (stdout += d));
  proc.stderr.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** The parent's environment without convault's own variables, so a developer's shell cannot leak into tests. */
function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k.startsWith('CONVAULT_') || k === 'DATABASE_URL' || k === 'PORT' || k === 'HOST') continue;
    env[k] = v;
  }
  return env;
}
