import { randomUUID } from 'node:crypto';
import type { Caller } from '../auth/auth-service.js';
import { conflict, notFound } from '../errors.js';
import { isStoreUnavailable } from '../../store/store-faults.js';
import type { KeyConfigService } from '../keyconfig/keyconfig-service.js';
import { errorGroupsOf, toJobModel, type JobErrorGroup, type JobModel } from './job-model.js';
import { runRewrapJob, type RewrapDeps } from './rewrap-job.js';

export interface RewrapServiceDeps extends Omit<RewrapDeps, 'nodeId' | 'clock'> {
  keyConfigs: Pick<KeyConfigService, 'resolveActiveKey'>;
  nodeId?: string;
  clock?: () => number;
  logger?: { error(obj: object, msg: string): void; warn?(obj: object, msg: string): void };
}

export type RewrapService = ReturnType<typeof createRewrapService>;

/**
 * Rewrap jobs: started over the API or the CLI, run on whichever node holds the job's lease,
 * resumed by a sweep after a crash (the lease runs out) or by a second POST.
 */
export function createRewrapService(deps: RewrapServiceDeps) {
  const clock = deps.clock ?? Date.now;
  const nodeId = deps.nodeId ?? randomUUID();
  const running = new Map<string, Promise<unknown>>();
  let stopping = false;
  let sweeper: NodeJS.Timeout | undefined;
  const jobDeps: RewrapDeps = { ...deps, nodeId, clock };

  /** Runs the job here if this node can take its lease; resolves when it ends or is abandoned. */
  function kick(orgId: string, jobId: string): Promise<unknown> {
    const existing = running.get(jobId);
    if (existing) return existing;
    const run = (async () => {
      if (!(await deps.dal.claimJob(orgId, jobId, nodeId, clock(), deps.settings.leaseMs))) return 'not-claimed';
      const job = (await deps.dal.findJob(orgId, jobId))!;
      try {
        return await runRewrapJob(jobDeps, job, () => stopping);
      } catch (err) {
        if (isStoreUnavailable(err)) throw err;
        // The target key itself is unusable: the job ends failed, with why.
        deps.logger?.error({ err: (err as Error).message, jobId }, 'rewrap job failed');
        const reason = (err as Error).message;
        await deps.dal.finishJob(orgId, jobId, nodeId, 'failed', { done: job.done, failed: job.failed, errors: JSON.stringify([{ dataKeyId: '', keyArn: job.target_key_id, reason }]) }, clock());
        return 'failed';
      }
    })()
      .catch((err) => {
        // The database failed while claiming, running or finishing the job. Not the job's fault: it
        // stays running under this node's lease; once that lapses, the sweep (here or on another node)
        // claims it again and resumes from what the database holds. Every swap is compare-and-set on
        // the blob that was read, so nothing done before the outage is applied twice.
        deps.logger?.warn?.({ jobId, err: (err as Error).message }, 'rewrap job interrupted; it resumes once its lease lapses');
        return 'interrupted';
      })
      .finally(() => running.delete(jobId));
    running.set(jobId, run);
    return run;
  }

  async function own(caller: Caller, jobId: string) {
    const row = await deps.dal.findJob(caller.orgId, jobId);
    if (!row) throw notFound('Job');
    return row;
  }

  return {
    /** Starts a rewrap to the org's current key, or answers the one already under way (and resumes it if orphaned). */
    async start(caller: Caller): Promise<JobModel> {
      const active = await deps.dal.findActiveJob(caller.orgId, 'rewrap');
      if (active) {
        void kick(caller.orgId, active.id);
        return toJobModel(active);
      }
      // Read anew: a Save made a moment ago on another node is the key the admin means.
      const key = await deps.keyConfigs.resolveActiveKey(caller.orgId, { fresh: true });
      const row = {
        id: randomUUID(),
        org_id: caller.orgId,
        type: 'rewrap' as const,
        state: 'queued' as const,
        target_key_id: key.keyId,
        target_key_arn: null,
        total: null,
        done: 0,
        failed: 0,
        errors: '[]',
        created_at: clock(),
        created_by: caller.principalId,
        started_at: null,
        finished_at: null,
        lease_owner: null,
        lease_expires_at: null,
        cancel_requested: 0,
      };
      if (!(await deps.dal.insertJob(row))) {
        // A concurrent start (on this node or another) inserted the organization's one active job
        // between our read and our insert: answer with that job, as a start during a job does.
        const winner = await deps.dal.findActiveJob(caller.orgId, 'rewrap');
        if (!winner) throw conflict('Another rewrap of this organization started and ended at this moment; start again.');
        void kick(caller.orgId, winner.id);
        return toJobModel(winner);
      }
      await deps.audit.record({
        orgId: caller.orgId,
        principal: caller.principalId,
        action: 'lifecycle.rewrap.started',
        target: row.id,
        outcome: 'success',
        details: { principalName: caller.principalName, targetKeyId: key.keyId, keyConfigurationType: key.type },
      });
      void kick(caller.orgId, row.id);
      return toJobModel(row);
    },

    async get(caller: Caller, jobId: string): Promise<JobModel> {
      return toJobModel(await own(caller, jobId));
    },

    /** Every failure of a job, grouped by reason, with all the data key ids the job kept. */
    async errors(caller: Caller, jobId: string): Promise<{ jobId: string; failed: number; entities: JobErrorGroup[] }> {
      const row = await own(caller, jobId);
      return { jobId: row.id, failed: row.failed, entities: errorGroupsOf(row) };
    },

    async cancel(caller: Caller, jobId: string): Promise<JobModel> {
      await own(caller, jobId);
      await deps.dal.requestCancel(caller.orgId, jobId, clock());
      await deps.audit.record({ orgId: caller.orgId, principal: caller.principalId, action: 'lifecycle.rewrap.cancel', target: jobId, outcome: 'success', details: { principalName: caller.principalName } });
      return toJobModel(await own(caller, jobId));
    },

    /** Runs a job to its end in this process (the CLI's --wait). */
    runHere(orgId: string, jobId: string): Promise<unknown> {
      return kick(orgId, jobId);
    },

    /** Picks up jobs nobody holds: queued ones from the CLI, and those of a node that died. */
    async sweep(): Promise<void> {
      if (stopping) return;
      for (const job of await deps.dal.listClaimableJobs(clock())) void kick(job.org_id, job.id);
    },

    startSweeper(intervalMs: number): void {
      const tick = () =>
        this.sweep().catch((err) => deps.logger?.error({ err: (err as Error).message }, 'rewrap sweep failed'));
      void tick();
      sweeper = setInterval(tick, intervalMs);
      sweeper.unref();
    },

    /** Stops taking work and lets running jobs stop at their next row; their leases lapse for the next start. */
    async stop(): Promise<void> {
      stopping = true;
      if (sweeper) clearInterval(sweeper);
      await Promise.allSettled([...running.values()]);
    },
  };
}
