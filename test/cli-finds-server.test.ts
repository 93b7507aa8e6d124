import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from './support/databases.js';
import { runCli, spawnServe, type ServeProcess } from './support/process.js';

/**
 * The walkthrough on a non-default port, exactly as documented: `PORT=N npm start` in a directory,
 * then `./convault kms …` and `./convault rewrap …` from the same directory with nothing else set.
 * The CLI finds the server's local KMS (PORT+1) through the URL the server records in its data dir.
 */

const WRAPPER = path.resolve('convault');
const CUSTOMER = '111122223333';

/** A free port whose successor is free too (the local KMS listens on PORT+1). */
async function freePortPair(): Promise<number> {
  const listen = (port: number) =>
    new Promise<net.Server | undefined>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(undefined));
      srv.listen(port, '127.0.0.1', () => resolve(srv));
    });
  for (let attempt = 0; attempt < 20; attempt++) {
    const first = await listen(0);
    const port = (first!.address() as net.AddressInfo).port;
    const second = port < 65535 ? await listen(port + 1) : undefined;
    await new Promise((r) => first!.close(r));
    if (second) {
      await new Promise((r) => second.close(r));
      return port;
    }
  }
  throw new Error('no pair of free ports');
}

describe('the CLI finds a server on a non-default port', () => {
  const dir = tempDir('convault-cli-port-');
  let serve: ServeProcess | undefined;
  afterAll(async () => {
    await serve?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('kms create-key and rewrap reach the local KMS at PORT+1 with no setting; stopped, the error names every way', async () => {
    const port = await freePortPair();
    // As `PORT=N npm start` in `dir`: no CONVAULT_LOCAL_KMS_PORT (empty means unset), data in ./data.
    serve = await spawnServe({ PORT: String(port), CONVAULT_LOCAL_KMS_PORT: '' }, 30_000, dir);
    expect(serve.stdout()).toContain(`Local KMS: http://127.0.0.1:${port + 1}`);
    const token = fs.readFileSync(path.join(dir, 'data', 'admin-token'), 'utf8').trim();
    const api = async (method: string, route: string, body?: unknown) => {
      const res = await fetch(`${serve!.url}${route}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      return { status: res.status, body: (await res.json()) as any };
    };
    const orgId = (await api('GET', '/api/v2/organizations/me')).body.id as string;

    const cli = (...args: string[]) => runCli(args, {}, 60_000, { cwd: dir, command: WRAPPER });
    const created = await cli('kms', 'create-key', '--account', CUSTOMER, '--alias', 'alias/demo-customer-key-2026', '--allow-org', orgId, '--json');
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    const aliasArn = JSON.parse(created.stdout).aliasArn as string;
    expect(aliasArn).toBe(`arn:aws:kms:us-east-1:${CUSTOMER}:alias/demo-customer-key-2026`);

    // The key is in the server's own KMS: Save (which runs the Test) accepts it.
    const saved = await api('POST', '/api/v2/conversations/keyconfigurations', { keyConfigurationType: 'KmsSymmetric', url: aliasArn });
    expect(saved.status).toBe(201);

    const rewrap = await cli('rewrap', '--org', orgId, '--wait', '--json');
    expect(rewrap.code).toBe(0);
    expect(JSON.parse(rewrap.stdout.trim().split('\n').at(-1)!)).toMatchObject({ state: 'succeeded', failed: 0 });

    // Stopped: the record is gone, and the CLI says how to point it at a KMS.
    expect(await serve.stop()).toBe(0);
    serve = undefined;
    expect(fs.existsSync(path.join(dir, 'data', 'local-kms.json'))).toBe(false);
    // (The default port, 8081, may belong to another server on this machine: the checks name ports.)
    const refused = await runCli(['kms', 'describe-key', '--key', aliasArn], { CONVAULT_LOCAL_KMS_PORT: String(port + 1) }, 60_000, { cwd: dir, command: WRAPPER });
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toContain(`cannot reach a KMS at http://127.0.0.1:${port + 1} (CONVAULT_LOCAL_KMS_PORT)`);
    for (const way of ['CONVAULT_DATA_DIR', 'local-kms.json', 'PORT', 'CONVAULT_LOCAL_KMS_PORT', 'CONVAULT_KMS_ENDPOINT']) expect(refused.stderr).toContain(way);

    // An explicit PORT is read as serve reads it (the local KMS at PORT+1).
    const explicit = await runCli(['kms', 'describe-key', '--key', aliasArn], { PORT: String(port) }, 60_000, { cwd: dir, command: WRAPPER });
    expect(explicit.stderr).toContain(`cannot reach a KMS at http://127.0.0.1:${port + 1} (PORT=${port}, local KMS at PORT+1)`);
  });
});
