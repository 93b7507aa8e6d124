import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** The soak's processes: `convault serve` nodes and a standalone `convault kms serve`, as real processes. */

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

export interface Spawned {
  proc: ChildProcess;
  pid: number;
  output(): string;
  exited: Promise<number | null>;
}

/** Starts `convault <args>` and resolves once its output matches `ready`. */
export async function spawnCli(args: string[], env: Record<string, string>, ready: RegExp, timeoutMs = 60_000): Promise<Spawned> {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('CONVAULT_') && k !== 'DATABASE_URL' && k !== 'PORT' && k !== 'HOST') clean[k] = v;
  }
  const proc = spawn(process.execPath, [CLI, ...args], {
    env: { ...clean, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  // Keep the tail only: a long run must not grow the soak's own memory.
  const append = (d: Buffer) => {
    out = (out + d.toString('utf8')).slice(-20_000);
  };
  proc.stdout!.on('data', append);
  proc.stderr!.on('data', append);
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`convault ${args.join(' ')} did not start in time:\n${out}`)), timeoutMs);
    const check = () => {
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`convault ${args.join(' ')} exited with ${code}:\n${out}`));
    });
  });
  return { proc, pid: proc.pid!, output: () => out, exited };
}

/** Resident set size (bytes) and open file descriptors of a process, from /proc. */
export function processUsage(pid: number): { rss: number; fds: number } | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKb = /VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1];
    if (rssKb === undefined) return undefined; // exited, not yet reaped
    const fds = fs.readdirSync(`/proc/${pid}/fd`).length;
    return { rss: Number(rssKb) * 1024, fds };
  } catch {
    return undefined;
  }
}

/** TCP sockets of this machine by inode: local and remote port, ESTABLISHED or not (from /proc/net/tcp and tcp6). */
function tcpSockets(): Map<string, { local: number; remote: number; established: boolean }> {
  const sockets = new Map<string, { local: number; remote: number; established: boolean }>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      const port = (addr: string) => parseInt(addr.split(':').at(-1)!, 16);
      sockets.set(cols[9]!, { local: port(cols[1]!), remote: port(cols[2]!), established: cols[3] === '01' });
    }
  }
  return sockets;
}

/**
 * A process's open fds by what they are: connections its clients opened to `ownPort`, connections
 * it opened to each named peer port (database, KMS), other sockets, and everything else (files,
 * pipes, event loop handles).
 */
export function fdBreakdown(pid: number, ownPort: number, peers: Record<string, number>): Record<string, number> | undefined {
  let links: string[];
  try {
    links = fs.readdirSync(`/proc/${pid}/fd`).map((fd) => {
      try {
        return fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        return '';
      }
    });
  } catch {
    return undefined;
  }
  const sockets = tcpSockets();
  const out: Record<string, number> = { clients: 0, ...Object.fromEntries(Object.keys(peers).map((k) => [k, 0])), otherSockets: 0, other: 0 };
  for (const link of links) {
    const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
    if (inode === undefined) {
      out.other!++;
      continue;
    }
    const tcp = sockets.get(inode);
    const peer = tcp ? Object.entries(peers).find(([, port]) => tcp.remote === port)?.[0] : undefined;
    if (tcp && tcp.local === ownPort && tcp.established) out.clients!++;
    else if (peer) out[peer]!++;
    else out.otherSockets!++;
  }
  return out;
}
