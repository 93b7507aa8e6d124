import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLifecycleDal } from '../src/services/lifecycle/lifecycle-dal.js';
import { runMigrations } from '../src/store/migrate.js';
import { convaultMigrations } from '../src/store/migrations/index.js';
import type { JobsTable } from '../src/store/schema.js';
import { configureOrgKey, createCustomerKey, orgWithCustomerKey } from './support/customer-keys.js';
import { databaseTargets } from './support/databases.js';
import { createOrgWithToken, startTestServer, type TestServer } from './support/runtime.js';

/**
 * One active rewrap job per organization, held by the database (migration 0010's partial unique
 * index): starts that race answer with one job, as a start during a job does; a database that
 * already holds two active jobs upgrades without failing.
 */

const BASE = '/api/v2/conversations/keyconfigurations';

const job = (orgId: string, id: string, state: JobsTable['state'], createdAt: number): JobsTable => ({
  id,
  org_id: orgId,
  type: 'rewrap',
  state,
  target_key_id: 'alias',
  target_key_arn: null,
  total: null,
  done: 0,
  failed: 0,
  errors: '[]',
  created_at: createdAt,
  created_by: 'p',
  started_at: null,
  finished_at: null,
  lease_owner: state === 'running' ? 'old-node' : null,
  lease_expires_at: state === 'running' ? createdAt + 60_000 : null,
  cancel_requested: 0,
});

for (const target of databaseTargets) {
  describe.skipIf(!target.available)(`one active rewrap per organization on ${target.name}`, () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer(target.name, { CONVAULT_DATA_KEY_MAX_CONVERSATIONS: '1' });
    });
    afterAll(async () => server?.close());

    it('starts at the same moment: all answered 202 with one job, one started event', async () => {
      const org = await orgWithCustomerKey(server, 'Racing rewraps', createOrgWithToken);
      for (let i = 0; i < 3; i++) {
        expect((await server.call('PUT', `/api/v2/conversations/r-${i}/secureddata`, { token: org.token, body: { data: { v: `${i}` } } })).status).toBe(200);
      }
      await configureOrgKey(server, org.token, (await createCustomerKey(server, { orgIds: [org.orgId] })).aliasArn);

      // On PostgreSQL the starts interleave between their read and their insert; on SQLite one node's
      // requests cannot (those queries run synchronously), there the race is the CLI beside a server,
      // and the second test shows the index refusing the second insert.
      // The job cannot finish while the answers are made: its KMS calls wait at the gate.
      const gate = server.runtime.kms.localKms!.faults.hold('ReEncrypt');
      let answers;
      try {
        answers = await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map(() => server.call('POST', `${BASE}/${org.configId}/rewrap`, { token: org.token })));
        expect(answers.map((a) => a.status)).toEqual(answers.map(() => 202));
        expect(new Set(answers.map((a) => a.body.id)).size).toBe(1);
        expect(['queued', 'running']).toContain((await server.call('GET', `/api/v2/jobs/${answers[0]!.body.id}`, { token: org.token })).body.state);
      } finally {
        gate.release();
      }
      const audit = await server.call('GET', '/api/v2/audits?action=lifecycle.rewrap.started', { token: org.token });
      expect(audit.body.entities).toHaveLength(1);
      for (let i = 0; i < 200; i++) {
        const state = (await server.call('GET', `/api/v2/jobs/${answers[0]!.body.id}`, { token: org.token })).body.state;
        if (state === 'succeeded') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect((await server.call('GET', `/api/v2/jobs/${answers[0]!.body.id}`, { token: org.token })).body).toMatchObject({ state: 'succeeded', done: 3 });
    });

    it('migration 0010 keeps the newest of two active jobs an older version let through, and refuses a second one from then on', async () => {
      const handle = await target.open();
      try {
        const before = Object.fromEntries(Object.entries(convaultMigrations.migrations).filter(([name]) => name < '0010'));
        await runMigrations(handle.db, handle.dialect, { ...convaultMigrations, migrations: before });
        const orgId = randomUUID();
        const other = randomUUID();
        await handle.db.insertInto('organizations').values([{ id: orgId, name: 'Twice', created_at: 1 }, { id: other, name: 'Once', created_at: 1 }]).execute();
        await handle.db
          .insertInto('jobs')
          .values([job(orgId, 'older', 'running', 1000), job(orgId, 'newer', 'queued', 2000), job(orgId, 'done', 'succeeded', 500), job(other, 'alone', 'running', 1000)])
          .execute();

        expect(await runMigrations(handle.db, handle.dialect, convaultMigrations)).toEqual(['0010-rewrap-single-active', '0011-local-key-manager', '0012-audit-action-by-pos']);
        const states = Object.fromEntries((await handle.db.selectFrom('jobs').select(['id', 'state', 'lease_owner']).execute()).map((r: any) => [r.id, r]));
        expect(states).toMatchObject({
          older: { state: 'cancelled', lease_owner: null },
          newer: { state: 'queued' },
          done: { state: 'succeeded' },
          alone: { state: 'running', lease_owner: 'old-node' },
        });

        const dal = createLifecycleDal(handle.db);
        expect(await dal.insertJob(job(orgId, 'third', 'queued', 3000))).toBe(false);
        expect((await dal.findActiveJob(orgId, 'rewrap'))?.id).toBe('newer');
        // Ended jobs do not count: once the active one ends, the next start inserts.
        await handle.db.updateTable('jobs').set({ state: 'succeeded' }).where('id', '=', 'newer').execute();
        expect(await dal.insertJob(job(orgId, 'fourth', 'queued', 4000))).toBe(true);
      } finally {
        await handle.close();
      }
    });
  });
}
