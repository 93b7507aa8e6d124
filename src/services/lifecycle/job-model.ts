import type { JobsTable } from '../../store/schema.js';

export interface JobError {
  dataKeyId: string;
  keyArn: string;
  awsError?: string;
  reason: string;
}

/**
 * The data keys that failed for one reason: same key, same AWS error, same remediation. The job
 * stores one group per reason with the ids of up to MAX_IDS_PER_GROUP data keys (`count` is exact).
 */
export interface JobErrorGroup {
  keyArn: string;
  awsError?: string;
  /** What to fix, ending with what to do next (rewrap again). */
  reason: string;
  count: number;
  dataKeyIds: string[];
}

export const MAX_IDS_PER_GROUP = 10_000;
/** Ids per group in the job model (GET /api/v2/jobs/{id}); GET /api/v2/jobs/{id}/errors has them all. */
export const IDS_SHOWN_PER_GROUP = 10;
const ERRORS_SHOWN = 100;

export interface JobModel {
  id: string;
  type: JobsTable['type'];
  state: JobsTable['state'];
  done: number;
  total: number | null;
  failed: number;
  /** One entry per failed data key (at most 100), kept for clients of the first version of the API. */
  errors: JobError[];
  /** The failures grouped by reason, with counts and the first data key ids of each. */
  errorGroups: JobErrorGroup[];
  targetKeyId: string;
  targetKeyArn?: string;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  selfUri: string;
}

const iso = (ms: number | null) => (ms === null ? undefined : new Date(ms).toISOString());

export function toJobModel(row: JobsTable): JobModel {
  const groups = errorGroupsOf(row);
  return {
    id: row.id,
    type: row.type,
    state: row.state,
    done: row.done,
    total: row.total,
    failed: row.failed,
    errors: groups.flatMap(legacyErrors).slice(0, ERRORS_SHOWN),
    errorGroups: groups.map((g) => ({ ...g, dataKeyIds: g.dataKeyIds.slice(0, IDS_SHOWN_PER_GROUP) })),
    targetKeyId: row.target_key_id,
    ...(row.target_key_arn ? { targetKeyArn: row.target_key_arn } : {}),
    createdAt: new Date(row.created_at).toISOString(),
    ...(row.started_at !== null ? { startedAt: iso(row.started_at) } : {}),
    ...(row.finished_at !== null ? { finishedAt: iso(row.finished_at) } : {}),
    selfUri: `/api/v2/jobs/${row.id}`,
  };
}

/**
 * The stored failures as groups. Jobs written by earlier versions stored one entry per data key
 * ({ dataKeyId, keyArn, awsError, reason }); those are grouped here the same way.
 */
export function errorGroupsOf(row: Pick<JobsTable, 'errors'>): JobErrorGroup[] {
  const stored = JSON.parse(row.errors) as Array<JobErrorGroup | JobError>;
  const groups = new Map<string, JobErrorGroup>();
  for (const entry of stored) {
    if ('count' in entry) {
      groups.set(groupKey(entry), entry);
      continue;
    }
    const key = groupKey(entry);
    const group = groups.get(key) ?? { keyArn: entry.keyArn, ...(entry.awsError ? { awsError: entry.awsError } : {}), reason: entry.reason, count: 0, dataKeyIds: [] };
    // An entry without a data key id is the job's own failure (its target key is unusable).
    if (entry.dataKeyId) {
      group.count++;
      group.dataKeyIds.push(entry.dataKeyId);
    }
    groups.set(key, group);
  }
  return [...groups.values()];
}

/** A group as the first version's one entry per data key (the job's own failure: one entry, no data key). */
function legacyErrors(g: JobErrorGroup): JobError[] {
  const entry = (dataKeyId: string): JobError => ({ dataKeyId, keyArn: g.keyArn, ...(g.awsError ? { awsError: g.awsError } : {}), reason: g.reason });
  return g.count === 0 ? [entry('')] : g.dataKeyIds.map(entry);
}

export function groupKey(e: { keyArn: string; awsError?: string; reason: string }): string {
  return `${e.keyArn}|${e.awsError ?? ''}|${e.reason}`;
}
