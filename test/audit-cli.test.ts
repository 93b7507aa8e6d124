import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { openConvaultDatabase } from '../src/server/runtime.js';
import { createAuditSealer } from '../src/services/audit/audit-sealer.js';
import { createAuditService } from '../src/services/audit/audit-service.js';
import { createOrgDal } from '../src/services/orgs/org-dal.js';
import { tempDir } from './support/databases.js';
import { CLI, runCli } from './support/process.js';

// Needs the built CLI: `npm run build` first (npm test does it).

/** Creates an organization with `events` audit events, in-process, on the data dir the CLI will read. */
async function seed(dataDir: string, events: number): Promise<string> {
  const database = await openConvaultDatabase(loadConfig({ CONVAULT_DATA_DIR: dataDir }));
  try {
    const orgId = randomUUID();
    await createOrgDal(database.db).insertOrganization({ id: orgId, name: `Org ${orgId.slice(0, 8)}`, created_at: Date.now() });
    const audit = createAuditService({ db: database.db });
    for (let i = 1; i <= events; i++) {
      await audit.record({
        orgId,
        principal: 'principal-1',
        action: i % 2 ? 'secureddata.read' : 'keyconfig.save',
        target: `conversation-${i}`,
        outcome: 'success',
        details: { attributes: i, note: 'ünïcödé "quoted"' },
      });
    }
    // No server runs here to seal them.
    // Released at once, so the next seed (another sealer, another node id) may seal too.
    const sealer = createAuditSealer({ db: database.db });
    await sealer.sealPending();
    await sealer.stop();
    return orgId;
  } finally {
    await database.close();
  }
}

function sqliteFile(dataDir: string) {
  return path.join(dataDir, 'convault.db');
}

describe('convault audit (CLI, SQLite)', () => {
  const dataDir = tempDir();
  const env = { CONVAULT_DATA_DIR: dataDir };
  let orgId: string;
  beforeAll(async () => {
    if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` before this suite`);
    orgId = await seed(dataDir, 7);
  });
  afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('exports JSON lines, oldest first, whose hashes anyone can recompute', async () => {
    const res = await runCli(['audit', 'export', '--org', orgId], env);
    expect(res.code).toBe(0);
    expect(res.stderr).toBe('');
    const lines = res.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(7);
    let prev = '0'.repeat(64);
    for (const [i, line] of lines.entries()) {
      const event = JSON.parse(line);
      expect(event).toMatchObject({ orgId, seq: i + 1, prevHash: prev, action: expect.any(String), details: { attributes: i + 1 } });
      // Independent check: no convault code, just the documented recipe (docs/AUDIT.md).
      const { hash, ...rest } = event;
      const canonical = canon(rest);
      expect(createHash('sha256').update(prev + canonical).digest('hex')).toBe(hash);
      prev = hash;
    }
  });

  // .ci/run installs jq; under CI a missing jq fails this test instead of skipping it.
  it.skipIf(!hasJq() && !process.env.CI)('matches the shell recipe in docs/AUDIT.md (jq + sha256sum)', async () => {
    const exported = (await runCli(['audit', 'export', '--org', orgId], env)).stdout;
    const file = path.join(dataDir, 'events.jsonl');
    fs.writeFileSync(file, exported);
    const script = fs.readFileSync('docs/AUDIT.md', 'utf8').match(/```sh verify-recipe\n([\s\S]*?)```/)?.[1];
    expect(script, 'docs/AUDIT.md has a ```sh verify-recipe block').toBeDefined();
    const out = execFileSync('bash', ['-c', script!, 'verify', file], { encoding: 'utf8' });
    expect(out.trim().split('\n').at(-1)).toBe('OK 7 events');
    // …and the recipe notices a tampered export.
    fs.writeFileSync(file, exported.replace('"attributes":3', '"attributes":4'));
    const broken = (() => {
      try {
        execFileSync('bash', ['-c', script!, 'verify', file], { encoding: 'utf8', stdio: 'pipe' });
        return undefined;
      } catch (err) {
        return err as { status: number; stdout: string };
      }
    })();
    expect(broken?.status).toBe(1);
    expect(broken?.stdout.trim()).toBe('BROKEN at seq 3');
  });

  it('matches the JavaScript recipe in docs/AUDIT.md', async () => {
    const exported = (await runCli(['audit', 'export', '--org', orgId], env)).stdout;
    const file = path.join(dataDir, 'events-js.jsonl');
    fs.writeFileSync(file, exported);
    const recipe = fs.readFileSync('docs/AUDIT.md', 'utf8').match(/```js\n([\s\S]*?)```/)?.[1];
    expect(recipe, 'docs/AUDIT.md has a ```js block').toBeDefined();
    const script = path.join(dataDir, 'verify.mjs');
    fs.writeFileSync(script, recipe!);
    expect(execFileSync(process.execPath, [script, file], { encoding: 'utf8' })).toMatch(/^OK 7 events, last hash [0-9a-f]{64}\n$/);
    fs.writeFileSync(file, exported.replace('"principal":"principal-1"', '"principal":"someone-else"'));
    const res = (() => {
      try {
        return { status: 0, stdout: execFileSync(process.execPath, [script, file], { encoding: 'utf8', stdio: 'pipe' }) };
      } catch (err) {
        return err as { status: number; stdout: string };
      }
    })();
    expect(res.status).toBe(1);
    expect(res.stdout).toMatch(/^BROKEN at seq 1 \(event [0-9a-f-]{36}\)/);
  });

  it('verifies an intact trail: exit 0 and one line', async () => {
    const res = await runCli(['audit', 'verify', '--org', orgId], env);
    expect(res.code).toBe(0);
    expect(res.stdout.trim()).toBe(`Audit trail of organization ${orgId} is intact: 7 events verified.`);
    const json = await runCli(['audit', 'verify', '--org', orgId, '--json'], env);
    expect(JSON.parse(json.stdout)).toEqual({ ok: true, count: 7, unsealed: { count: 0, oldestAt: null, oldestAgeMs: null } });
  });

  it('refuses an unknown organization instead of verifying an empty trail', async () => {
    const res = await runCli(['audit', 'verify', '--org', 'no-such-org'], env);
    expect(res.code).toBe(1);
    expect(res.stderr.trim()).toMatch(/^convault: Organization no-such-org was not found .*convault orgs list/);
  });

  it('exits 1 naming the first broken event after a row is modified in the SQLite file', async () => {
    const tampered = await seed(dataDir, 5);
    const sqlite = new SQLite(sqliteFile(dataDir));
    let brokenId: string;
    try {
      brokenId = (sqlite.prepare('select id from audit_events where org_id = ? and seq = 3').get(tampered) as { id: string }).id;
      sqlite.prepare(`update audit_events set details = '{"attributes":300}' where id = ?`).run(brokenId);
    } finally {
      sqlite.close();
    }
    const res = await runCli(['audit', 'verify', '--org', tampered], env);
    expect(res.code).toBe(1);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toContain(`broken at event ${brokenId} (seq 3)`);
    expect(res.stderr).toContain('modified');
    expect(res.stderr).toContain('the 2 events before it verify');
    const json = await runCli(['audit', 'verify', '--org', tampered, '--json'], env);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, count: 2, brokenAt: { id: brokenId, seq: 3 } });
    // The other organization's chain is untouched.
    expect((await runCli(['audit', 'verify', '--org', orgId], env)).code).toBe(0);
  });

  it('exits 1 naming the event after a deleted row', async () => {
    const tampered = await seed(dataDir, 4);
    const sqlite = new SQLite(sqliteFile(dataDir));
    let nextId: string;
    try {
      sqlite.prepare('delete from audit_events where org_id = ? and seq = 2').run(tampered);
      nextId = (sqlite.prepare('select id from audit_events where org_id = ? and seq = 3').get(tampered) as { id: string }).id;
    } finally {
      sqlite.close();
    }
    const res = await runCli(['audit', 'verify', '--org', tampered], env);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`broken at event ${nextId} (seq 3)`);
    expect(res.stderr).toContain('missing');
  });

  it('never forks the chain when two processes append to the same SQLite file at once', async () => {
    const shared = await seed(dataDir, 0);
    const moduleUrl = (p: string) => pathToFileURL(path.resolve(p)).href;
    const script = `
      const { openDatabase } = await import(${JSON.stringify(moduleUrl('dist/src/store/database.js'))});
      const { createAuditService } = await import(${JSON.stringify(moduleUrl('dist/src/services/audit/audit-service.js'))});
      const handle = await openDatabase({ dataDir: process.env.CONVAULT_DATA_DIR });
      const audit = createAuditService({ db: handle.db });
      await Promise.all(Array.from({ length: 40 }, (_, i) =>
        audit.record({ orgId: process.env.ORG, principal: 'proc-' + process.pid, action: 'secureddata.write', outcome: 'success', details: { i } })));
      await handle.close();
    `;
    const run = () =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, ...env, ORG: shared }, stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr.on('data', (d) => (stderr += d));
        child.once('exit', (code) => resolve({ code, stderr }));
      });
    const results = await Promise.all([run(), run()]);
    for (const r of results) expect(r, r.stderr).toMatchObject({ code: 0 });
    const unsealed = await runCli(['audit', 'verify', '--org', shared], env);
    expect(unsealed.code).toBe(0);
    expect(unsealed.stdout).toMatch(/intact: 0 events verified\. 80 newer events are not sealed yet \(the oldest appended \d+\.\d s ago\)\./);
    // No server runs on this file: `audit seal` chains them (taking the sealer's lease like a server would).
    const seal = await runCli(['audit', 'seal'], env);
    expect(seal.stdout).toMatch(/^Sealed \d+ audit events\.$/m);
    const verify = await runCli(['audit', 'verify', '--org', shared, '--json'], env);
    expect(JSON.parse(verify.stdout)).toEqual({ ok: true, count: 80, unsealed: { count: 0, oldestAt: null, oldestAgeMs: null } });
    const seqs = (await runCli(['audit', 'export', '--org', shared], env)).stdout.trimEnd().split('\n').map((l) => JSON.parse(l).seq);
    expect(seqs).toEqual(Array.from({ length: 80 }, (_, i) => i + 1));
  });
});

/** The documented JavaScript recipe, deliberately not convault's canonicalJson. */
const canon = (v: any): string =>
  Array.isArray(v)
    ? `[${v.map(canon).join(',')}]`
    : v && typeof v === 'object'
      ? `{${Object.keys(v).sort().map((k) => JSON.stringify(k) + ':' + canon(v[k])).join(',')}}`
      : JSON.stringify(v);

function hasJq(): boolean {
  try {
    execFileSync('jq', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
