import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';

/**
 * Where the CLI finds the KMS a running server uses. `convault serve` (and `convault kms serve`)
 * record the URL of the local KMS they started in the data dir; `convault kms …` and `convault
 * rewrap`, run with the same configuration, read it back — so a server started on another PORT is
 * found without telling the CLI anything. Order: CONVAULT_KMS_ENDPOINT, then an explicit PORT or
 * CONVAULT_LOCAL_KMS_PORT, then the record, then the default port.
 */

export const LOCAL_KMS_RECORD = 'local-kms.json';

interface Record {
  url: string;
  pid: number;
}

const recordPath = (dataDir: string) => path.join(dataDir, LOCAL_KMS_RECORD);

/** Written once the local KMS listens; best effort (the server runs fine without it). */
export function recordLocalKmsUrl(dataDir: string, url: string): void {
  try {
    fs.writeFileSync(recordPath(dataDir), JSON.stringify({ url, pid: process.pid } satisfies Record) + '\n', { mode: 0o644 });
  } catch {
    // A read-only data dir was refused earlier; nothing else depends on the record.
  }
}

/** Removed on shutdown, unless another process has written its own since. */
export function forgetLocalKmsUrl(dataDir: string, url: string): void {
  if (readRecord(dataDir)?.url === url) fs.rmSync(recordPath(dataDir), { force: true });
}

function readRecord(dataDir: string): Record | undefined {
  try {
    const parsed = JSON.parse(fs.readFileSync(recordPath(dataDir), 'utf8')) as Partial<Record>;
    return typeof parsed.url === 'string' && /^http:\/\/127\.0\.0\.1:\d+$/.test(parsed.url) ? { url: parsed.url, pid: Number(parsed.pid) } : undefined;
  } catch {
    return undefined;
  }
}

export interface KmsAddress {
  endpoint: string;
  /** How it was found, for messages. */
  source: string;
}

/** The KMS a CLI command should call, with the configuration it runs with. */
export function kmsAddressForCli(config: Config): KmsAddress {
  if (config.kms.endpoint) return { endpoint: config.kms.endpoint, source: 'CONVAULT_KMS_ENDPOINT' };
  const local = `http://127.0.0.1:${config.kms.localPort}`;
  if (config.kms.localPortSource === 'CONVAULT_LOCAL_KMS_PORT') return { endpoint: local, source: 'CONVAULT_LOCAL_KMS_PORT' };
  if (config.kms.localPortSource === 'PORT') return { endpoint: local, source: `PORT=${config.port}, local KMS at PORT+1` };
  const recorded = readRecord(config.dataDir);
  if (recorded) return { endpoint: recorded.url, source: `recorded by the server in ${recordPath(config.dataDir)}` };
  return { endpoint: local, source: 'the default port, PORT+1; no running server recorded one in ' + config.dataDir };
}

/** The one-line error for a KMS the CLI cannot reach: every way to point it at the right one. */
export function unreachableKmsMessage(address: KmsAddress, dataDir: string): string {
  return (
    `cannot reach a KMS at ${address.endpoint} (${address.source}). Start the server (npm start, or ./convault kms serve for the local KMS alone), ` +
    `or point the CLI at the running one: run it with the server's data dir (CONVAULT_DATA_DIR, now ${dataDir}; the server records its local KMS URL in ${LOCAL_KMS_RECORD} there), ` +
    'or set the PORT (local KMS at PORT+1) or CONVAULT_LOCAL_KMS_PORT the server was started with, or CONVAULT_KMS_ENDPOINT=<url> for any other KMS.'
  );
}
