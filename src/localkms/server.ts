import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Kysely } from 'kysely';
import type { DialectName } from '../store/database.js';
import { runMigrations } from '../store/migrate.js';
import { isStoreUnavailable } from '../store/store-faults.js';
import { ADMIN_PREFIX, handleAdminRequest, type AdminContext } from './admin-endpoint.js';
import { accountRootArn, isAccountId } from './arns.js';
import { createCredentialStore, type AccessKey } from './credential-store.js';
import { hostMatcher } from './host-check.js';
import { dispatch } from './dispatch.js';
import { KmsError } from './errors.js';
import { FaultController, type OutageMode } from './fault-controller.js';
import { KeyMaterialCache } from './key-material-cache.js';
import { createKeyStore, type KeyStore } from './key-store.js';
import { localKmsMigrations } from './migrations.js';
import { PrincipalDirectory } from './principals.js';
import { operationFromTarget, parseJsonBody, readBody, sendError, sendResult } from './protocol.js';
import { authenticate, type PrincipalResolver } from './request-auth.js';
import { openWithRootKey, RootKeyError, sealWithRootKey } from './root-key.js';

export interface LocalKmsLogger {
  info(message: string): void;
  warn(message: string): void;
}

export interface LocalKmsOptions {
  db: Kysely<any>;
  dialect: DialectName;
  /** 32 bytes; see resolveLocalKmsRootKey. */
  rootKey: Buffer;
  /** 0 → a free port (tests). */
  port: number;
  /** Default 127.0.0.1: the local KMS is for this machine unless asked otherwise. */
  host?: string;
  /** Epoch ms; drives creation and deletion dates, so tests can pass deletion windows. */
  clock?: () => number;
  principalsFile?: string;
  /**
   * Development only: admit any 12-digit access key id as that account's root without checking its
   * signature (the local KMS's behaviour before it authenticated callers). Logged loudly at start.
   */
  insecureAnyAccount?: boolean;
  /**
   * Bearer secret of the admin endpoints (`/_localkms/credentials`, `/_localkms/faults`); without it
   * they do not exist. See resolveLocalKmsAdminSecret.
   */
  adminSecret?: string;
  /** Serve `/_localkms/faults` over HTTP (tests); in process, `faults` works regardless. */
  faultEndpoint?: boolean;
  /** Host names (besides loopback names and addresses, and `host`) that requests may be addressed to. */
  allowedHosts?: string[];
  logger?: LocalKmsLogger;
}

export interface LocalKms {
  url: string;
  port: number;
  faults: FaultController;
  /** The account's access key, issued on first use (what `convault kms credentials` prints). */
  credentialsFor(accountId: string): Promise<AccessKey>;
  close(): Promise<void>;
}

const ROOT_KEY_CHECK = 'root_key_check';
const ROOT_KEY_CHECK_LABEL = 'localkms-root-key-check';

export async function startLocalKms(opts: LocalKmsOptions): Promise<LocalKms> {
  if (opts.rootKey.length !== 32) throw new RootKeyError('the local KMS root key must be 32 bytes');
  const host = opts.host ?? '127.0.0.1';
  const clock = opts.clock ?? Date.now;
  const logger = opts.logger;
  const rootKey = Buffer.from(opts.rootKey);
  const materials = new KeyMaterialCache();
  const faults = new FaultController();
  const insecure = opts.insecureAnyAccount === true;
  const directory = opts.principalsFile ? PrincipalDirectory.fromFile(opts.principalsFile, { requireSecrets: !insecure }) : new PrincipalDirectory();

  await runMigrations(opts.db, opts.dialect, localKmsMigrations);
  const store = createKeyStore(opts.db);
  await checkRootKey(store, rootKey);
  const credentials = createCredentialStore(opts.db, rootKey, clock);
  const resolvePrincipal: PrincipalResolver = async (accessKeyId) => {
    const entry = directory.lookup(accessKeyId) ?? (await credentials.lookup(accessKeyId));
    if (entry || !insecure || !isAccountId(accessKeyId)) return entry;
    return { accessKeyId, arn: accountRootArn(accessKeyId), accountId: accessKeyId };
  };
  const admin: AdminContext = { faults, secret: opts.adminSecret, faultEndpoint: opts.faultEndpoint === true, credentials };
  const hostAllowed = hostMatcher([host, ...(opts.allowedHosts ?? [])]);
  if (insecure) {
    logger?.warn(
      'local KMS: INSECURE — --insecure-any-account admits any 12-digit access key id as that account without a signature check; anyone who can reach the port can use and delete every key',
    );
  }

  const inFlight = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    inFlight.add(res);
    res.once('close', () => inFlight.delete(res));
    handle(req, res).catch((err) => {
      logger?.warn(`local KMS: request failed unexpectedly (${errorCode(err)})`);
      if (!res.headersSent) sendError(res, new KmsError('KMSInternalException', 'Internal error in the local KMS.', 500));
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    let operation = '?';
    try {
      // A browser on this machine can be made to send requests to a loopback port under another
      // name (DNS rebinding); the name it believes it talks to is in Host, so only ours are served.
      if (!hostAllowed(req.headers.host)) {
        throw new KmsError('UnrecognizedClientException', 'The Host header does not name this local KMS.', 403);
      }
      if (url.startsWith(ADMIN_PREFIX)) return await handleAdminRequest(req, res, admin);
      if (faults.outage !== 'none') throw new KmsError('ServiceUnavailableException', 'The local KMS is in an injected outage.', 503);
      // `/` as the SDK sends it needs no URL parsing; anything else (a query string, …) is parsed.
      if (req.method !== 'POST' || (url !== '/' && new URL(url, 'http://localhost').pathname !== '/')) {
        throw new KmsError('UnknownOperationException', 'The local KMS answers POST / with X-Amz-Target: TrentService.<Operation>.', 404);
      }
      const body = await readBody(req);
      operation = operationFromTarget(req.headers['x-amz-target']);
      const caller = await authenticate({ method: req.method, url, headers: req.headers, body }, resolvePrincipal);
      const delay = faults.latencyFor(operation);
      if (delay > 0) await sleep(delay);
      await faults.passGate(operation);
      if (faults.shouldThrottle(operation)) {
        throw new KmsError('ThrottlingException', 'You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls.');
      }
      const result = await dispatch(operation, parseJsonBody(body), { store, rootKey, materials, caller, now: clock() });
      sendResult(res, result);
    } catch (err) {
      if (err instanceof KmsError) {
        // Our own faults (a key without material, a root key that does not open it) are the operator's
        // to see; the injected outage is a test's. These messages name keys, never request contents.
        if (err.status >= 500 && faults.outage === 'none') logger?.warn(`local KMS: ${operation} answered ${err.status} ${err.type}: ${err.message}`);
        return sendError(res, err);
      }
      if (isStoreUnavailable(err)) {
        // The database is down or busy: a retryable 503, as AWS KMS answers when a dependency fails.
        logger?.warn(`local KMS: ${operation} failed, database unavailable (${err.reason}${err.driverCode ? `, ${err.driverCode}` : ''})`);
        return sendError(res, new KmsError('DependencyTimeoutException', 'The system timed out while trying to fulfill the request. You can retry the request.', 503));
      }
      // The operation and what failed, by name and code only: an unexpected error's message may quote
      // what it was working on (a request body, key material), which never reaches the log.
      logger?.warn(`local KMS: ${operation} answered 500 KMSInternalException (${errorCode(err)})`);
      sendError(res, new KmsError('KMSInternalException', 'Internal error in the local KMS.', 500));
    }
  }

  await listen(server, opts.port, host);
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  // `refused` outage: close the listener (and open connections, which keep-alive would reuse) so
  // connects fail with ECONNREFUSED; reopen on the same port when it ends.
  let closed = false;
  const stopOutageListener = faults.onOutageChange(async (mode: OutageMode) => {
    if (closed) return;
    if (mode === 'refused') await stopListening(server, inFlight);
    else if (!server.listening) await listen(server, port, host);
  });

  logger?.info(`local KMS listening on ${url}`);
  return {
    url,
    port,
    faults,
    credentialsFor: (accountId) => {
      if (!isAccountId(accountId)) return Promise.reject(new Error(`${accountId} is not a 12-digit AWS account id`));
      return credentials.issue(accountId);
    },
    async close() {
      closed = true;
      stopOutageListener();
      await faults.settled().catch(() => undefined);
      faults.dispose();
      await stopListening(server, inFlight);
      materials.clear();
      credentials.clear();
      rootKey.fill(0);
    },
  };
}

/** An unexpected error as its class name and code (`TypeError`, `Error SQLITE_CORRUPT`), never its message. */
function errorCode(err: unknown): string {
  if (!(err instanceof Error)) return typeof err;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' || typeof code === 'number' ? `${err.name} ${code}` : err.name;
}

/** A fresh database records a check value under the root key; a later start with another key fails here, clearly. */
async function checkRootKey(store: KeyStore, rootKey: Buffer): Promise<void> {
  const candidate = sealWithRootKey(rootKey, ROOT_KEY_CHECK_LABEL, Buffer.from('convault local KMS')).toString('base64');
  const stored = await store.putMetaIfAbsent(ROOT_KEY_CHECK, candidate);
  try {
    openWithRootKey(rootKey, ROOT_KEY_CHECK_LABEL, Buffer.from(stored, 'base64'));
  } catch {
    throw new RootKeyError(
      'The local KMS root key does not match the one its stored keys are encrypted under. Start with the original key ' +
        '(CONVAULT_LOCAL_KMS_ROOT_KEY, or <data dir>/localkms-root.key); nodes sharing one database must all use the same key.',
    );
  }
}

function listen(server: http.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/**
 * Stops accepting connections and closes the open ones: idle keep-alive connections at once, busy
 * ones right after their response (which may be the admin response that asked for the outage).
 */
function stopListening(server: http.Server, inFlight: Set<http.ServerResponse>): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
    for (const res of inFlight) {
      if (!res.headersSent) res.setHeader('connection', 'close');
      else res.once('finish', () => res.socket?.destroy());
    }
  });
}
