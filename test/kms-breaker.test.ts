import { randomBytes } from 'node:crypto';
import { CreateKeyCommand, type KMSClient } from '@aws-sdk/client-kms';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createKmsClient } from '../src/kms/client-factory.js';
import { KmsCallError } from '../src/kms/kms-failure.js';
import { createKmsGateway, type KmsGateway } from '../src/kms/kms-gateway.js';
import { createKmsMetrics } from '../src/kms/kms-metrics.js';
import { startLocalKms, type LocalKms } from '../src/localkms/index.js';
import { sqliteTarget } from './support/databases.js';
import { rejection } from './support/rejection.js';

/**
 * The KMS gateway's circuit breaker against the local KMS's outage fault, on a fake clock: it opens
 * after the threshold of unreachable answers, then fails fast without a request leaving the process
 * (even once KMS is back), half-opens after the open period for one trial, and closes on an answer.
 */

const ACCOUNT = '111122223333';
const REGION = 'us-east-1';
const THRESHOLD = 3;
const OPEN_MS = 5_000;
const CTX = { 'convault-organization-id': 'org-1' };

let kms: LocalKms;
let closeDb: () => Promise<void>;
let keyId: string;
let client: KMSClient;
/** Requests the SDK client actually sent. */
let sent = 0;
let now = 1_000_000;
let gateway: KmsGateway;

beforeAll(async () => {
  const handle = await sqliteTarget.open();
  closeDb = handle.close;
  kms = await startLocalKms({ db: handle.db, dialect: handle.dialect, rootKey: randomBytes(32), port: 0 });
  client = createKmsClient({ endpoint: kms.url, region: REGION, credentials: await kms.credentialsFor(ACCOUNT), maxAttempts: 1 });
  keyId = (await client.send(new CreateKeyCommand({}))).KeyMetadata!.Arn!;
  client.middlewareStack.add((next) => (args) => ((sent += 1), next(args)), { step: 'finalizeRequest', name: 'countSent' });
});

afterEach(async () => {
  kms.faults.reset();
  await kms.faults.settled();
});

afterAll(async () => {
  await kms.close();
  await closeDb();
});

function freshGateway(): KmsGateway {
  now = 1_000_000;
  return createKmsGateway({ clientForRegion: () => client, defaultRegion: REGION, metrics: createKmsMetrics(), now: () => now, breaker: { failureThreshold: THRESHOLD, openMs: OPEN_MS } });
}

const failure = (p: Promise<unknown>) => rejection(p, KmsCallError);

const encrypt = () => gateway.encrypt(keyId, Buffer.from('x'), CTX);

describe('circuit breaker against the local KMS outage fault', () => {
  it('opens after the threshold, fails fast without reaching KMS, half-opens for one trial, and closes', async () => {
    gateway = freshGateway();
    await encrypt();
    expect(gateway.breakerState(REGION)).toBe('closed');

    kms.faults.set({ outage: 'unavailable' });
    for (let i = 1; i <= THRESHOLD; i++) {
      const before = sent;
      const err = await failure(encrypt());
      expect(err.kind).toBe('Unreachable');
      expect(err.awsName).not.toBe('CircuitOpen');
      expect(sent).toBe(before + 1);
      expect(gateway.breakerState(REGION)).toBe(i < THRESHOLD ? 'closed' : 'open');
    }

    // Open: nothing leaves the process, even after KMS is back.
    const before = sent;
    expect((await failure(encrypt())).awsName).toBe('CircuitOpen');
    kms.faults.reset();
    await kms.faults.settled();
    now += OPEN_MS - 1;
    expect((await failure(encrypt())).awsName).toBe('CircuitOpen');
    expect(sent).toBe(before);

    // Half-open: one trial at a time; its answer closes the circuit.
    now += 1;
    expect(gateway.breakerState(REGION)).toBe('half-open');
    const [trial, concurrent] = await Promise.allSettled([encrypt(), encrypt()]);
    expect(trial.status).toBe('fulfilled');
    expect(concurrent.status).toBe('rejected');
    expect(((concurrent as PromiseRejectedResult).reason as KmsCallError).awsName).toBe('CircuitOpen');
    expect(sent).toBe(before + 1);
    expect(gateway.breakerState(REGION)).toBe('closed');
    await encrypt();
    expect(sent).toBe(before + 2);
  });

  it('a failed trial opens it again for a full period', async () => {
    gateway = freshGateway();
    kms.faults.set({ outage: 'unavailable' });
    for (let i = 0; i < THRESHOLD; i++) await failure(encrypt());
    now += OPEN_MS;
    const before = sent;
    expect((await failure(encrypt())).awsName).not.toBe('CircuitOpen'); // the trial reached KMS
    expect(sent).toBe(before + 1);
    expect(gateway.breakerState(REGION)).toBe('open');
    kms.faults.reset();
    await kms.faults.settled();
    now += OPEN_MS - 1;
    expect((await failure(encrypt())).awsName).toBe('CircuitOpen');
    now += 1;
    await encrypt();
    expect(gateway.breakerState(REGION)).toBe('closed');
  });

  it('refused connections count as unreachable; answers that are errors (a bad blob) do not open it', async () => {
    gateway = freshGateway();
    for (let i = 0; i < THRESHOLD + 2; i++) {
      expect((await failure(gateway.decrypt(randomBytes(64), CTX, keyId))).kind).toBe('InvalidCiphertext');
    }
    expect(gateway.breakerState(REGION)).toBe('closed');

    kms.faults.set({ outage: 'refused' });
    await kms.faults.settled();
    for (let i = 0; i < THRESHOLD - 1; i++) await failure(encrypt());
    expect(gateway.breakerState(REGION)).toBe('closed');
    // An answer in between resets the count: the threshold is of consecutive failures.
    kms.faults.reset();
    await kms.faults.settled();
    await encrypt();
    kms.faults.set({ outage: 'refused' });
    await kms.faults.settled();
    for (let i = 0; i < THRESHOLD - 1; i++) await failure(encrypt());
    expect(gateway.breakerState(REGION)).toBe('closed');
    expect((await failure(encrypt())).kind).toBe('Unreachable');
    expect(gateway.breakerState(REGION)).toBe('open');
    // Another region has its own breaker.
    expect(gateway.breakerState('eu-west-1')).toBe('closed');
  });
});
