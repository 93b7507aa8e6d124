import fs from 'node:fs';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { loadConfig } from '../config.js';
import { openXksProxy, type Pkcs11Options, type XksProxy, type XksServer } from '../xks/index.js';

/**
 * `convault xks …`: the reference XKS proxy (docs/XKS.md). `serve` runs it; the other commands
 * change its store directly (SQLite in WAL mode, so they work while `serve` runs, and `serve` reads
 * every key's status on each request, so a disable takes effect on the next call).
 */

interface StoreOptions {
  dataDir?: string;
  pkcs11Module?: string;
  pkcs11Token?: string;
  json?: boolean;
}

const DEFAULT_PORT = 9443;
export const PKCS11_PIN_VARIABLE = 'CONVAULT_XKS_PKCS11_PIN';

export function registerXksCommands(program: Command): void {
  const xks = program.command('xks').description('The reference AWS KMS External Key Store (XKS) proxy: serve it, create and disable its keys, issue SigV4 credentials');

  withStoreOptions(
    xks
      .command('serve')
      .description('Serve the XKS proxy API (keys and credentials in <CONVAULT_DATA_DIR>/xks.db)')
      .option('--port <port>', `port to listen on (0: any free port)`, String(DEFAULT_PORT))
      .option('--host <host>', 'address to listen on; anything but loopback needs --tls-cert and --tls-key', '127.0.0.1')
      .option('--tls-cert <file>', 'PEM certificate chain: serve HTTPS')
      .option('--tls-key <file>', 'PEM private key of --tls-cert')
      .option('--tls-client-ca <file>', 'mutual TLS: require client certificates chained to this PEM CA bundle')
      .option('--tls-client-cn <name>', 'mutual TLS: and with this subject CN, e.g. cks.kms.us-east-1.amazonaws.com'),
  ).action(async (opts: StoreOptions & { port: string; host: string; tlsCert?: string; tlsKey?: string; tlsClientCa?: string; tlsClientCn?: string }, cmd: Command) => {
    await run(cmd, async () => {
      const port = Number(opts.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error('--port must be 0-65535');
      if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) throw new Error('give both --tls-cert and --tls-key, or neither');
      if ((opts.tlsClientCa || opts.tlsClientCn) && !opts.tlsCert) throw new Error('mutual TLS (--tls-client-ca, --tls-client-cn) needs --tls-cert and --tls-key');
      if (opts.tlsClientCn && !opts.tlsClientCa) throw new Error('--tls-client-cn needs --tls-client-ca');
      const tls =
        opts.tlsCert && opts.tlsKey
          ? {
              cert: fs.readFileSync(opts.tlsCert),
              key: fs.readFileSync(opts.tlsKey),
              ...(opts.tlsClientCa ? { clientCa: fs.readFileSync(opts.tlsClientCa) } : {}),
              ...(opts.tlsClientCn ? { clientCommonName: opts.tlsClientCn } : {}),
            }
          : undefined;
      if (!tls && !isLoopback(opts.host)) {
        throw new Error(`plain HTTP is served on loopback only; to listen on ${opts.host} give --tls-cert and --tls-key`);
      }
      const proxy = await open(opts);
      let server: XksServer;
      try {
        server = await proxy.serve({
          host: opts.host,
          port,
          ...(tls ? { tls } : {}),
          log: (entry) => process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`),
        });
      } catch (err) {
        await proxy.close();
        throw err;
      }
      process.stdout.write(`convault XKS proxy listening at ${server.url}\n  Store: ${proxy.location}${opts.pkcs11Module ? `; keys in the PKCS#11 token of ${opts.pkcs11Module}` : ''}\n`);
      const stop = () => {
        server
          .close()
          .then(() => proxy.close())
          .then(
            () => process.exit(0),
            () => process.exit(1),
          );
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
  });

  withStoreOptions(
    xks
      .command('create-key')
      .description('Create an AES-256 key (in the PKCS#11 token with --pkcs11-module, else sealed in xks.db)')
      .requiredOption('--key-id <id>', 'external key id: 1-128 of A-Z a-z 0-9 - . _')
      .option('--usage <usage>', 'encrypt,decrypt | encrypt | decrypt | none', 'encrypt,decrypt'),
  ).action(async (opts: StoreOptions & { keyId: string; usage: string }, cmd: Command) => {
    await withProxy(cmd, opts, async (proxy) => {
      const key = await proxy.keys.createKey(opts.keyId, opts.usage);
      print(opts, key, `Created key ${key.keyId} (AES_256, usage ${key.keyUsage.join(',') || 'none'}, ${key.backend === 'pkcs11' ? 'in the PKCS#11 token' : 'in xks.db'})`);
    });
  });

  for (const [name, status, description] of [
    ['disable-key', 'DISABLED', 'Disable a key: Encrypt and Decrypt with it fail with InvalidStateException until enable-key'],
    ['enable-key', 'ENABLED', 'Enable a disabled key'],
  ] as const) {
    withStoreOptions(xks.command(name).description(description).requiredOption('--key-id <id>', 'external key id')).action(
      async (opts: StoreOptions & { keyId: string }, cmd: Command) => {
        await withProxy(cmd, opts, async (proxy) => {
          const key = await proxy.keys.setStatus(opts.keyId, status);
          print(opts, key, `Key ${key.keyId} is ${key.keyStatus}`);
        });
      },
    );
  }

  withStoreOptions(
    xks
      .command('credentials')
      .description('SigV4 credentials of a logical key store (created on the first call; requests under another URI prefix are refused)')
      .requiredOption('--uri-prefix <path>', 'the key store\'s URI path, [/<path-prefix>]/kms/xks/v1 (the /kms/xks/v1 suffix may be left out)')
      .option('--rotate', 'issue a new set; the older ones stay valid until revoked')
      .option('--revoke <accessKeyId>', 'revoke one access key id of this key store'),
  ).action(async (opts: StoreOptions & { uriPrefix: string; rotate?: boolean; revoke?: string }, cmd: Command) => {
    await withProxy(cmd, opts, async (proxy) => {
      if (opts.rotate && opts.revoke) throw new Error('give --rotate or --revoke, not both');
      if (opts.revoke) {
        const result = await proxy.credentials.revoke(opts.uriPrefix, opts.revoke);
        print(opts, result, `Revoked ${result.revoked} of ${result.uriPrefix}; ${result.remaining.length} set(s) remain`);
        return;
      }
      const creds = opts.rotate ? await proxy.credentials.rotate(opts.uriPrefix) : await proxy.credentials.credentialsFor(opts.uriPrefix);
      print(opts, creds, `URI path:          ${creds.uriPrefix}\nAccess key id:     ${creds.accessKeyId}\nSecret access key: ${creds.secretAccessKey}`);
    });
  });
}

function withStoreOptions(cmd: Command): Command {
  return cmd
    .option('--data-dir <dir>', 'directory of xks.db and xks-root.key (default CONVAULT_DATA_DIR, or ./data)')
    .option('--pkcs11-module <path>', `keep keys in a PKCS#11 token through this module (PIN in ${PKCS11_PIN_VARIABLE})`)
    .option('--pkcs11-token <label>', 'label of the token (default: the first initialized one)')
    .option('--json', 'print JSON');
}

async function open(opts: StoreOptions): Promise<XksProxy> {
  const dataDir = opts.dataDir ? path.resolve(opts.dataDir) : loadConfig(process.env).dataDir;
  let pkcs11: Pkcs11Options | undefined;
  if (opts.pkcs11Module) {
    const pin = process.env[PKCS11_PIN_VARIABLE];
    if (!pin) throw new Error(`--pkcs11-module needs the token's user PIN in ${PKCS11_PIN_VARIABLE}`);
    pkcs11 = { modulePath: opts.pkcs11Module, pin, ...(opts.pkcs11Token ? { tokenLabel: opts.pkcs11Token } : {}) };
  }
  return openXksProxy({ dataDir, ...(pkcs11 ? { pkcs11 } : {}) });
}

async function withProxy(cmd: Command, opts: StoreOptions, use: (proxy: XksProxy) => Promise<void>): Promise<void> {
  await run(cmd, async () => {
    const proxy = await open(opts);
    try {
      await use(proxy);
    } finally {
      await proxy.close();
    }
  });
}

async function run(cmd: Command, action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (err) {
    if (err instanceof CommanderError) throw err;
    cmd.error(`convault: ${((err as Error).message || String(err)).split('\n')[0]}`, { exitCode: 1, code: 'convault.xks' });
  }
}

function print(opts: { json?: boolean }, value: unknown, human: string): void {
  process.stdout.write(`${opts.json ? JSON.stringify(value, null, 2) : human}\n`);
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}
