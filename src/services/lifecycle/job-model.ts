import type { JobsTable } from '../../store/schema.js';

export interface JobError {
  dataKeyId: string;
  keyArn: string;
  awsError?: string;
  reason: string;
}

export interface JobModel {
  id: string;
  type: JobsTable['type'];
  state: JobsTable['state'];
  done: number;
  total: number | null;
  failed: number;
  errors: JobError[];
  targetKeyId: string;
  targetKeyArn?: string;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  selfUri: string;
}

const iso = (ms: number | null) => (ms === null ? undefined : new Date(ms).toISOString());

export function toJobModel(row: JobsTable): JobModel {
  return {
    id: row.id,
    type: row.type,
    state: row.state,
    done: row.done,
    total: row.total,
    failed: row.failed,
    errors: JSON.parse(row.errors) as JobError[],
    targetKeyId: row.target_key_id,
    ...(row.target_key_arn ? { targetKeyArn: row.target_key_arn } : {}),
    createdAt: new Date(row.created_at).toISOString(),
    ...(row.started_at !== null ? { startedAt: iso(row.started_at) } : {}),
    ...(row.finished_at !== null ? { finishedAt: iso(row.finished_at) } : {}),
    selfUri: `/api/v2/jobs/${row.id}`,
  };
}
