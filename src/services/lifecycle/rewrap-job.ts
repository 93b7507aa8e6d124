import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { isKeyProviderError, KeyProviderError, type DataKeyBinding, type KeyProvider, type WrappedDataKey } from '../../providers/key-provider.js';
import { typeOwningReference } from '../../providers/registry.js';
import { isStoreUnavailable } from '../../store/store-faults.js';
import type { JobsTable } from '../../store/schema.js';
import type { AuditRecorder } from '../keyconfig/keyconfig-service.js';
import type { OrgKeys } from '../keyconfig/org-keys.js';
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
  /** The organization's keys: the one each data key is wrapped by, and the target. */
  keys: Pick<OrgKeys, 'forReference'>;
  audit: AuditRecorder;
  /** Drops this node's cached copies of data keys whose row changed. */
  forgetDataKeys(ids: Iterable<string>): void;
  settings: RewrapSettings;
  nodeId: string;
  clock: () => number;
}

const PROGRESS_MS = 250;

/**
 * Runs one rewrap job to its end: every live org data key not wrapped by the target key is moved to
 * it — inside the provider when source and target are keys of one provider that can (AWS
 * ReEncrypt), otherwise unwrapped by the key that wraps it and wrapped by the target through
 * convault (AWS ↔ XKS, XKS → XKS), the plaintext zeroed at once — then swapped in only if the row
 * still holds the blob that was read. Conversation keys and values
 * are never touched, so the cost is O(data keys). Progress and a lease go to the database after
 * every batch, so a crash leaves a job another start picks up and finishes.
 */
export async function runRewrapJob(deps: RewrapDeps, job: JobsTable, shouldStop: () => boolean): Promise<JobsTable['state'] | 'abandoned'> {
  const { dal, settings, clock } = deps;
  const orgId = job.org_id;
  const target = await deps.keys.forReference(orgId, job.target_key_id);
  const targetArn = job.target_key_arn ?? (await resolveTargetArn(target, job, settings.encryptionContextKey));
  const targetSpec = typeOwningReference(job.target_key_id);
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

  // A server-side rewrap (AWS ReEncrypt) is one call instead of two and the key never leaves the
  // provider. The key-policy helper grants kms:ReEncrypt*, but a customer's policy may not (written
  // by hand, or before the helper granted it): the first refusal switches this job to unwrap + wrap.
  let serverSideAllowed = true;
  const moveToTarget = async (row: RewrapCandidate, binding: DataKeyBinding): Promise<WrappedDataKey> => {
    const source = await deps.keys.forReference(orgId, row.key_arn);
    const wrapped = { blob: row.wrapped_key!, keyId: row.key_arn };
    const sameProvider = targetSpec !== undefined && typeOwningReference(row.key_arn) === targetSpec;
    if (serverSideAllowed && sameProvider && targetSpec.supportsServerSideRewrap && source.rewrapDataKey) {
      try {
        return await source.rewrapDataKey(wrapped, binding, job.target_key_id);
      } catch (err) {
        if (!isKeyProviderError(err, 'AccessDenied')) throw err;
        serverSideAllowed = false;
      }
    }
    let plaintext: Buffer | undefined;
    try {
      plaintext = await source.unwrapDataKey(wrapped, binding);
      return await target.wrapDataKey(plaintext, binding);
    } finally {
      plaintext?.fill(0);
    }
  };

  const rewrapOne = async (row: RewrapCandidate): Promise<void> => {
    const binding = { orgId, dataKeyId: row.id, contextKey: row.context_key };
    try {
      const next = await withUnreachableRetries(() => moveToTarget(row, binding));
      // Lost the race (shredded, or another node rewrapped it first): nothing to do, nothing lost.
      await dal.swapWrappedKey(orgId, row.id, row.wrapped_key!, { wrappedKey: next.blob, keyArn: next.keyId, at: clock() });
      rewrapped.push(row.id);
      done++;
    } catch (err) {
      // A database outage is no fault of this data key: the run stops, and the job resumes later.
      if (isStoreUnavailable(err)) throw err;
      const failure = isKeyProviderError(err) ? err : new KeyProviderError('Internal', (err as Error).message, { operation: 'Rewrap', cause: err });
      failed++;
      // Which key refused: the target when wrapping failed, else the key the data key is under.
      // (None when the source's adapter could not even be built: its own message says why.)
      const refusing = failure.details.operation === 'Encrypt' ? target : await deps.keys.forReference(orgId, row.key_arn).catch(() => undefined);
      const reason = rewrapReason(failure, row, orgId, refusing);
      const providerError = failure.providerError ?? failure.kind;
      const key = groupKey({ keyArn: row.key_arn, awsError: providerError, reason });
      const group = errorGroups.get(key) ?? { keyArn: row.key_arn, awsError: providerError, reason, count: 0, dataKeyIds: [] };
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
 * A key provider unreachable for a moment (a paused circuit after an outage, the local KMS waiting
 * for its database, an XKS proxy restarting) is worth a short wait before the data key is counted as failed.
 */
async function withUnreachableRetries<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (attempt > UNREACHABLE_RETRIES || !isKeyProviderError(err, 'Unavailable')) throw err;
      await sleep(500 * attempt);
    }
  }
}

/** The key the target resolves to now: its description, or (if the policy denies that) a throwaway wrap. */
async function resolveTargetArn(target: KeyProvider, job: JobsTable, contextKey: string): Promise<string> {
  try {
    return (await target.describe()).keyId;
  } catch (err) {
    if (!isKeyProviderError(err, 'AccessDenied')) throw err;
  }
  const probe = randomBytes(32);
  try {
    return (await target.wrapDataKey(probe, { orgId: job.org_id, dataKeyId: `rewrap-target-${job.id}`, contextKey })).keyId;
  } finally {
    probe.fill(0);
  }
}

/** What to fix for a data key that could not be moved, ending with what to do next: rewrap again. */
function rewrapReason(failure: KeyProviderError, row: RewrapCandidate, orgId: string, refusing: KeyProvider | undefined): string {
  const what = `Data keys under ${row.key_arn} could not be moved (${failure.providerError ?? failure.kind} on ${failure.details.operation ?? 'Rewrap'}).`;
  const remediation = refusing ? refusing.remediation(failure, { nextStep: 'rewrap again', orgId }) : `${failure.message.replace(/\.$/, '')}. Fix that, then rewrap again.`;
  return /rewrap again/.test(remediation) ? `${what} ${remediation}` : `${what} ${remediation} Then rewrap again: those data keys stay under their old key until a rewrap moves them.`;
}
