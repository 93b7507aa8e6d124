import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { CreateKeyCommand, DecryptCommand, EncryptCommand, ListKeysCommand, type KMSClient } from '@aws-sdk/client-kms';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { localKmsClient } from './support/local-kms.js';
import { FAULTS_PATH, startLocalKms, type LocalKms } from '../src/localkms/index.js';
import { sqliteTarget } from './support/databases.js';

/** Injected latency, throttling and outages, in process and through the admin endpoint. */

const CUSTOMER = '111122223333';

const ADMIN_SECRET = 'fault-tests-admin-secret';
let kms: LocalKms;
let closeDb: () => Promise<void>;
let client: KMSClient;
let keyId: string;
let blob: Uint8Array;

beforeAll(async () => {
  const handle = await sqliteTarget.open();
  closeDb = handle.close;
  kms = await startLocalKms({ db: handle.db, dialect: handle.dialect, rootKey: randomBytes(32), port: 0, adminSecret: ADMIN_SECRET, faultEndpoint: true });
  client = localKmsClient(kms, CUSTOMER, { maxAttempts: 1 });
  keyId = (await client.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
  blob = (await client.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') }))).CiphertextBlob!;
});

afterEach(async () => {
  kms.faults.reset();
  await kms.faults.settled();
});

afterAll(async () => {
  await kms.close();
  await closeDb();
});

async function rejection(p: Promise<unknown>): Promise<Error & { code?: string; $metadata?: { httpStatusCode?: number } }> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected the call to fail').toBeInstanceOf(Error);
  return err as Error;
}

const decrypt = (c = client) => c.send(new DecryptCommand({ CiphertextBlob: blob }));

describe('latency', () => {
  it('delays the operations named, and only those', async () => {
    kms.faults.set({ latencyMs: { Decrypt: 150 } });
    let started = performance.now();
    await decrypt();
    expect(performance.now() - started).toBeGreaterThanOrEqual(145);
    started = performance.now();
    await client.send(new ListKeysCommand({}));
    expect(performance.now() - started).toBeLessThan(145);
  });
});

describe('throttling', () => {
  it('answers ThrottlingException (HTTP 400) that a client without retries sees', async () => {
    kms.faults.set({ throttle: { ratio: 1 } });
    const err = await rejection(decrypt());
    expect(err.name).toBe('ThrottlingException');
    expect(err.$metadata?.httpStatusCode).toBe(400);
  });

  it('throttles exactly the ratio, so the SDK retry gets through', async () => {
    kms.faults.set({ throttle: { ratio: 0.5, operations: ['Decrypt'] } });
    const outcomes: string[] = [];
    for (let i = 0; i < 4; i++) outcomes.push(await decrypt().then(() => 'ok', (e: Error) => e.name));
    expect(outcomes).toEqual(['ok', 'ThrottlingException', 'ok', 'ThrottlingException']);
    await client.send(new ListKeysCommand({})); // other operations untouched

    const retrying = localKmsClient(kms, CUSTOMER, { maxAttempts: 3 });
    kms.faults.set({ throttle: { ratio: 0.5, operations: ['Decrypt'] } }); // first one passes, second throttled
    await decrypt(retrying);
    const out = await decrypt(retrying);
    expect(out.$metadata.attempts).toBe(2);
  });
});

describe('outage', () => {
  it('unavailable: every KMS request gets 503 until it ends', async () => {
    kms.faults.set({ outage: 'unavailable' });
    const err = await rejection(decrypt());
    expect(err.$metadata?.httpStatusCode).toBe(503);
    expect(err.name).toBe('ServiceUnavailableException');
    kms.faults.set({ outage: 'none' });
    await decrypt();
  });

  it('refused: connections are refused, then the same port serves again', async () => {
    kms.faults.set({ outage: 'refused' });
    await kms.faults.settled();
    // A client with no pooled connection is refused; one whose idle connection was just closed may see a reset instead.
    const fresh = localKmsClient(kms, CUSTOMER, { maxAttempts: 1 });
    const err = await rejection(decrypt(fresh));
    expect(err.code).toBe('ECONNREFUSED');
    expect(await rejection(decrypt())).toBeInstanceOf(Error);
    kms.faults.set({ outage: 'none' });
    await kms.faults.settled();
    await decrypt();
  });
});

describe('admin endpoint', () => {
  const admin = (method: string, body?: unknown, secret = ADMIN_SECRET) =>
    fetch(`${kms.url}${FAULTS_PATH}`, {
      method,
      headers: { authorization: `Bearer ${secret}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });

  it('refuses a caller without the admin secret, and changes nothing', async () => {
    expect((await admin('PUT', { outage: 'unavailable' }, 'not-the-secret')).status).toBe(401);
    expect((await fetch(`${kms.url}${FAULTS_PATH}`, { method: 'PUT', body: '{"outage":"unavailable"}' })).status).toBe(401);
    expect(kms.faults.outage).toBe('none');
    await decrypt();
  });

  it('does not exist unless enabled', async () => {
    const handle = await sqliteTarget.open();
    const plain = await startLocalKms({ db: handle.db, dialect: handle.dialect, rootKey: randomBytes(32), port: 0, adminSecret: ADMIN_SECRET });
    try {
      const res = await fetch(`${plain.url}${FAULTS_PATH}`, { method: 'PUT', headers: { authorization: `Bearer ${ADMIN_SECRET}` }, body: '{"outage":"unavailable"}' });
      expect(res.status).toBe(404);
      expect(plain.faults.outage).toBe('none');
    } finally {
      await plain.close();
      await handle.close();
    }
  });

  it('shows, changes and resets the faults', async () => {
    expect(await (await admin('GET')).json()).toEqual({ latencyMs: {}, throttle: { ratio: 0 }, outage: 'none' });
    const put = await admin('PUT', { throttle: { ratio: 1, operations: ['Decrypt'] }, latencyMs: { '*': 1 } });
    expect(put.status).toBe(200);
    expect((await rejection(decrypt())).name).toBe('ThrottlingException');
    expect((await admin('PUT', { throttle: { ratio: 7 } })).status).toBe(400);
    expect(await (await admin('DELETE')).json()).toEqual({ latencyMs: {}, throttle: { ratio: 0 }, outage: 'none' });
    await decrypt();
  });

  it('still answers during an unavailable outage, and can end a refused one by timer', async () => {
    await admin('PUT', { outage: 'unavailable' });
    expect((await admin('GET')).status).toBe(200);
    await admin('PUT', { outage: 'refused', outageForMs: 200 });
    await kms.faults.settled();
    expect((await rejection(decrypt())).message).toBeTruthy();
    await new Promise((r) => setTimeout(r, 250));
    await kms.faults.settled();
    await decrypt();
  });
});

// A non-loopback address of this machine, if it has one: the admin endpoint must refuse callers there.
const externalAddress = Object.values(os.networkInterfaces())
  .flat()
  .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;

describe.skipIf(!externalAddress)('admin endpoint on a server reachable beyond loopback', () => {
  it('refuses a caller that is not on loopback', async () => {
    const handle = await sqliteTarget.open();
    const open = await startLocalKms({ db: handle.db, dialect: handle.dialect, rootKey: randomBytes(32), port: 0, host: '0.0.0.0', adminSecret: ADMIN_SECRET, faultEndpoint: true });
    try {
      const auth = { authorization: `Bearer ${ADMIN_SECRET}` };
      const res = await fetch(`http://${externalAddress}:${open.port}${FAULTS_PATH}`, { method: 'PUT', headers: auth, body: '{"outage":"unavailable"}' });
      expect(res.status).toBe(403);
      expect(open.faults.outage).toBe('none');
      expect((await fetch(`http://127.0.0.1:${open.port}${FAULTS_PATH}`, { headers: auth })).status).toBe(200);
    } finally {
      await open.close();
      await handle.close();
    }
  });
});
