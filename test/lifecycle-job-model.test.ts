import { describe, expect, it } from 'vitest';
import { errorGroupsOf, groupKey, IDS_SHOWN_PER_GROUP, MAX_IDS_PER_GROUP, toJobModel } from '../src/services/lifecycle/job-model.js';
import type { JobsTable } from '../src/store/schema.js';

/**
 * The job as GET /api/v2/jobs/{id} shows it: failures grouped by reason (the stored form), the first
 * version's one entry per data key derived from the groups, and jobs stored by earlier versions
 * (one entry per data key) read as groups.
 */

const ARN_A = 'arn:aws:kms:us-east-1:111122223333:key/a';
const ARN_B = 'arn:aws:kms:us-east-1:111122223333:key/b';

function job(overrides: Partial<JobsTable> = {}): JobsTable {
  return {
    id: 'job-1',
    org_id: 'org-1',
    type: 'rewrap',
    state: 'queued',
    target_key_id: 'arn:aws:kms:us-east-1:111122223333:alias/t',
    target_key_arn: null,
    total: null,
    done: 0,
    failed: 0,
    errors: '[]',
    created_at: Date.UTC(2026, 0, 1),
    created_by: 'admin',
    started_at: null,
    finished_at: null,
    lease_owner: null,
    lease_expires_at: null,
    cancel_requested: 0,
    ...overrides,
  };
}

describe('job model', () => {
  it('shows a queued job without the times and key it does not have yet', () => {
    expect(toJobModel(job())).toEqual({
      id: 'job-1',
      type: 'rewrap',
      state: 'queued',
      done: 0,
      total: null,
      failed: 0,
      errors: [],
      errorGroups: [],
      targetKeyId: 'arn:aws:kms:us-east-1:111122223333:alias/t',
      createdAt: '2026-01-01T00:00:00.000Z',
      selfUri: '/api/v2/jobs/job-1',
    });
    const model = toJobModel(job());
    for (const absent of ['startedAt', 'finishedAt', 'targetKeyArn']) expect(absent in model, absent).toBe(false);
  });

  it('shows a finished job with its resolved key, times and failures; the first ids of each group, and one legacy entry per data key', () => {
    const ids = Array.from({ length: 12 }, (_, i) => `dk-${i}`);
    const groups = [
      { keyArn: ARN_A, awsError: 'DisabledException', reason: 'disabled', count: 12, dataKeyIds: ids },
      { keyArn: ARN_B, reason: 'gone', count: 1, dataKeyIds: ['dk-b'] },
    ];
    const model = toJobModel(
      job({ state: 'failed', target_key_arn: ARN_B, total: 20, done: 7, failed: 13, errors: JSON.stringify(groups), started_at: Date.UTC(2026, 0, 1, 0, 0, 1), finished_at: Date.UTC(2026, 0, 1, 0, 0, 2) }),
    );
    expect(model).toMatchObject({ state: 'failed', total: 20, done: 7, failed: 13, targetKeyArn: ARN_B, startedAt: '2026-01-01T00:00:01.000Z', finishedAt: '2026-01-01T00:00:02.000Z' });
    expect(IDS_SHOWN_PER_GROUP).toBe(10);
    expect(model.errorGroups).toEqual([
      { ...groups[0], dataKeyIds: ids.slice(0, 10) },
      { keyArn: ARN_B, reason: 'gone', count: 1, dataKeyIds: ['dk-b'] },
    ]);
    expect(model.errors).toHaveLength(13);
    expect(model.errors[0]).toEqual({ dataKeyId: 'dk-0', keyArn: ARN_A, awsError: 'DisabledException', reason: 'disabled' });
    expect(model.errors[12]).toEqual({ dataKeyId: 'dk-b', keyArn: ARN_B, reason: 'gone' });
  });

  it('shows at most 100 legacy entries', () => {
    const ids = Array.from({ length: 150 }, (_, i) => `dk-${i}`);
    const model = toJobModel(job({ errors: JSON.stringify([{ keyArn: ARN_A, reason: 'r', count: 150, dataKeyIds: ids }]) }));
    expect(model.errors).toHaveLength(100);
    expect(model.errors.at(-1)!.dataKeyId).toBe('dk-99');
    expect(model.errorGroups[0]!.count).toBe(150);
  });

  it("shows the job's own failure (its target unusable) as a group without data keys and one legacy entry without an id", () => {
    const errors = JSON.stringify([{ dataKeyId: '', keyArn: ARN_A, reason: 'The target key is gone' }]);
    const model = toJobModel(job({ state: 'failed', errors }));
    expect(model.errorGroups).toEqual([{ keyArn: ARN_A, reason: 'The target key is gone', count: 0, dataKeyIds: [] }]);
    expect(model.errors).toEqual([{ dataKeyId: '', keyArn: ARN_A, reason: 'The target key is gone' }]);
  });

  it('reads the per-data-key entries of earlier versions as groups by key, AWS error and reason', () => {
    const stored = [
      { dataKeyId: 'dk-1', keyArn: ARN_A, awsError: 'DisabledException', reason: 'disabled' },
      { dataKeyId: 'dk-2', keyArn: ARN_A, awsError: 'DisabledException', reason: 'disabled' },
      { dataKeyId: 'dk-3', keyArn: ARN_A, awsError: 'AccessDeniedException', reason: 'disabled' },
      { dataKeyId: 'dk-4', keyArn: ARN_B, reason: 'disabled' },
      { dataKeyId: 'dk-5', keyArn: ARN_A, awsError: 'DisabledException', reason: 'other' },
    ];
    expect(errorGroupsOf({ errors: JSON.stringify(stored) })).toEqual([
      { keyArn: ARN_A, awsError: 'DisabledException', reason: 'disabled', count: 2, dataKeyIds: ['dk-1', 'dk-2'] },
      { keyArn: ARN_A, awsError: 'AccessDeniedException', reason: 'disabled', count: 1, dataKeyIds: ['dk-3'] },
      { keyArn: ARN_B, reason: 'disabled', count: 1, dataKeyIds: ['dk-4'] },
      { keyArn: ARN_A, awsError: 'DisabledException', reason: 'other', count: 1, dataKeyIds: ['dk-5'] },
    ]);
    // A stored group is taken as it is.
    const group = { keyArn: ARN_A, reason: 'r', count: 20_000, dataKeyIds: ['dk-1'] };
    expect(errorGroupsOf({ errors: JSON.stringify([group]) })).toEqual([group]);
    expect(MAX_IDS_PER_GROUP).toBe(10_000);
  });

  it('keys a group by key ARN, AWS error and reason', () => {
    expect(groupKey({ keyArn: ARN_A, awsError: 'DisabledException', reason: 'r' })).toBe(`${ARN_A}|DisabledException|r`);
    expect(groupKey({ keyArn: ARN_A, reason: 'r' })).toBe(`${ARN_A}||r`);
  });
});
