import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { KmsCallError, classifyKmsError } from '../../kms/kms-failure.js';
import type { KmsGateway } from '../../kms/kms-gateway.js';
import { isStoreUnavailable } from '../../store/store-faults.js';
import type { JobsTable } from '../../store/schema.js';
import { remediationFor } from '../keyconfig/remediation.js';
import type { AuditRecorder } from '../keyconfig/keyconfig-service.js';
import { MAX_IDS_PER_GROUP, groupKey, type JobErrorGroup } from './job-model.js';
import type { LifecycleDal, RewrapCandidate } from './lifecycle-dal.js';

export interface RewrapSettings {
  /** KMS calls in flight per organization. */
  concurrency: number;
  leaseMs: number;
  batchSize: number;
  platformAccountId: string;
  defaultRegion: string;
  encryptionContextKey: string;
}

export interface RewrapDeps {
  dal: LifecycleDal;
  gateway: Pick<KmsGateway, 'describeKey' | 'decrypt' | 'encrypt' | 'reEncrypt'>;
  audit: AuditRecorder;
  /** Drops this node's cached copies of data keys whose row changed. */
  forgetDataKeys(ids: Iterable<string>): void;
  settings: RewrapSettings;
  nodeId: string;
  clock: () => number;
}

const PROGRESS_MS = 250;

/**
 * Runs one rewrap job to its end: every live org data key not wrapped by the target key is
 * decrypted with the key that wraps it (same encryption context) and encrypted under the target,
 * then swapped in only if the row still holds the blob that was read. Conversation keys and values
 * are never touched, so the cost is O(data keys). Progress and a lease go to the database after
 * every batch, so a crash leaves a job another start picks up and finishes.
 */
export async function runRewrapJob(deps: RewrapDeps, job: JobsTable, shouldStop: () => boolean): Promise<JobsTable['state'] | 'abandoned'> {
  const { dal, gateway, settings, clock } = deps;
  const orgId = job.org_id;
  const targetArn = job.target_key_arn ?? (await resolveTargetArn(gateway, job, settings.encryptionContextKey));
  const remaining = await dal.countNotWrappedBy(orgId, targetArn);
  // A resumed job keeps its total; what is left now tells how much is done.
  const total = job.total ?? remaining;
  let done = Math.max(0, total - remaining);
  let failed = 0;
  // Failures grouped by reason: a disabled old key fails every data key it wraps the same way.
  const errorGroups = new Map<string, JobErrorGroup>();
  const rewrapped: string[] = [];

  const progress = () => ({ done, failed, errors: JSON.stringify([...errorGroups.values()]) });
  let beat = await dal.heartbeat(orgId, job.id, deps.nodeId, { ...progress(), total, target_key_arn: targetArn }, clock() + settings.leaseMs);

  // ReEncrypt is one KMS call instead of two and the key never leaves KMS. The key-policy helper
  // grants kms:ReEncrypt*, but a customer's policy may not (written by hand, or before the helper
  // granted it): the first refusal switches this job to Decrypt + Encrypt.
  let reEncryptAllowed = true;
  const moveToTarget = async (row: RewrapCandidate, context: Record<string, string>): Promise<{ ciphertextBlob: Buffer; keyArn: string }> => {
    if (reEncryptAllowed) {
      try {
        return await gateway.reEncrypt({ ciphertextBlob: row.wrapped_key!, sourceKeyId: row.key_arn, destinationKeyId: job.target_key_id, context });
      } catch (err) {
        if (!(err instanceof KmsCallError) || err.kind !== 'AccessDenied') throw err;
        reEncryptAllowed = false;
      }
    }
    let plaintext: Buffer | undefined;
    try {
      plaintext = (await gateway.decrypt(row.wrapped_key!, context, row.key_arn)).plaintext;
      return await gateway.encrypt(job.target_key_id, plaintext, context);
    } finally {
      plaintext?.fill(0);
    }
  };

  const rewrapOne = async (row: RewrapCandidate): Promise<void> => {
    const context = { [row.context_key]: orgId };
    try {
      const next = await withUnreachableRetries(() => moveToTarget(row, context));
      // Lost the race (shredded, or another node rewrapped it first): nothing to do, nothing lost.
      await dal.swapWrappedKey(orgId, row.id, row.wrapped_key!, { wrappedKey: next.ciphertextBlob, keyArn: next.keyArn, at: clock() });
      rewrapped.push(row.id);
      done++;
    } catch (err) {
      // A database outage is no fault of this data key: the run stops, and the job resumes later.
      if (isStoreUnavailable(err)) throw err;
      const failure = err instanceof KmsCallError ? err : classifyKmsError(err, 'Rewrap');
      failed++;
      const reason = rewrapReason(failure, row, orgId, settings);
      const key = groupKey({ keyArn: row.key_arn, awsError: failure.awsName, reason });
      const group = errorGroups.get(key) ?? { keyArn: row.key_arn, awsError: failure.awsName, reason, count: 0, dataKeyIds: [] };
      group.count++;
      if (group.dataKeyIds.length < MAX_IDS_PER_GROUP) group.dataKeyIds.push(row.id);
      errorGroups.set(key, group);
    }
  };

  // Progress reaches the database at least every PROGRESS_MS, also inside a long batch.
  let lastBeatAt = clock();
  let beating: Promise<void> | undefined;
  const maybeBeat = () => {
    if (beating || clock() - lastBeatAt < PROGRESS_MS) return;
    lastBeatAt = clock();
    // A failed beat is not fatal here: the heartbeat after the batch tells whether the lease is still held.
    beating = dal
      .heartbeat(orgId, job.id, deps.nodeId, progress(), clock() + settings.leaseMs)
      .then(
        (b) => void (beat = b),
        () => undefined,
      )
      .finally(() => (beating = undefined));
  };

  let afterId = '';
  for (;;) {
    if (beat.cancelRequested) break;
    if (!beat.held || shouldStop()) {
      deps.forgetDataKeys(rewrapped);
      if (beat.held) await dal.releaseJob(orgId, job.id, deps.nodeId, progress()); // the next start resumes it
      return 'abandoned';
    }
    const batch = await dal.nextNotWrappedBy(orgId, targetArn, afterId, settings.batchSize);
    if (batch.length === 0) break;
    afterId = batch[batch.length - 1]!.id;
    let next = 0;
    // The first worker to fail (the database went away) stops the others, so no worker of this run
    // is still at work when the job is resumed by the next claim.
    let aborted: { err: unknown } | undefined;
    const worker = async () => {
      while (next < batch.length && !shouldStop() && !beat.cancelRequested && !aborted) {
        try {
          await rewrapOne(batch[next++]!);
        } catch (err) {
          aborted ??= { err };
          return;
        }
        maybeBeat();
      }
    };
    await Promise.all(Array.from({ length: Math.min(settings.concurrency, batch.length) }, worker));
    await beating;
    if (aborted) {
      deps.forgetDataKeys(rewrapped);
      throw aborted.err;
    }
    beat = await dal.heartbeat(orgId, job.id, deps.nodeId, progress(), clock() + settings.leaseMs);
    lastBeatAt = clock();
  }

  const state = beat.cancelRequested ? 'cancelled' : failed > 0 ? 'failed' : 'succeeded';
  await dal.finishJob(orgId, job.id, deps.nodeId, state, progress(), clock());
  deps.forgetDataKeys(rewrapped);
  await deps.audit.record({
    orgId,
    principal: 'system:rewrap',
    action: 'lifecycle.rewrap.finished',
    target: job.id,
    outcome: state === 'succeeded' ? 'success' : 'failure',
    details: { state, total, done, failed, targetKeyArn: targetArn },
  });
  return state;
}

// Up to about 10 s of retries (0.5 s, 1 s, … 3 s): a KMS whose own store restarts or fails over answers
// again within that, and a data key is counted failed only for what outlasts it.
const UNREACHABLE_RETRIES = 6;

/**
 * KMS unreachable for a moment (a paused circuit after an outage, or the local KMS waiting for its
 * database) is worth a short wait before the data key is counted as failed.
 */
async function withUnreachableRetries<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (attempt > UNREACHABLE_RETRIES || !(err instanceof KmsCallError) || err.kind !== 'Unreachable') throw err;
      await sleep(500 * attempt);
    }
  }
}

/** The key ARN the target resolves to now: DescribeKey, or (if the policy denies it) a tiny Encrypt. */
async function resolveTargetArn(gateway: RewrapDeps['gateway'], job: JobsTable, contextKey: string): Promise<string> {
  try {
    const meta = await gateway.describeKey(job.target_key_id);
    if (meta.Arn) return meta.Arn;
  } catch (err) {
    if (!(err instanceof KmsCallError) || err.kind !== 'AccessDenied') throw err;
  }
  const probe = await gateway.encrypt(job.target_key_id, randomBytes(1), { [contextKey]: job.org_id });
  return probe.keyArn;
}

/** What to fix for a data key that could not be moved, ending with what to do next: rewrap again. */
function rewrapReason(failure: KmsCallError, row: RewrapCandidate, orgId: string, settings: RewrapSettings): string {
  const remediation = remediationFor(failure, {
    orgId,
    platformAccountId: settings.platformAccountId,
    encryptionContextKey: row.context_key,
    keyId: row.key_arn,
    region: row.key_arn.split(':')[3] ?? settings.defaultRegion,
    accountId: row.key_arn.split(':')[4],
    nextStep: 'rewrap again',
  });
  const what = `Data keys under ${row.key_arn} could not be moved (${failure.awsName} on ${failure.operation}).`;
  return /rewrap again/.test(remediation) ? `${what} ${remediation}` : `${what} ${remediation} Then rewrap again: those data keys stay under their old key until a rewrap moves them.`;
}
