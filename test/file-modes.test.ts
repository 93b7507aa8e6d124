import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './support/databases.js';
import { startTestServer } from './support/runtime.js';

/** The data dir is 0700 and every database and secret file in it 0600, whatever the umask. */

const mode = (p: string) => fs.statSync(p).mode & 0o777;
const FILES = ['convault.db', 'convault.db-wal', 'convault.db-shm', 'localkms-root.key', 'localkms-admin.secret', 'admin-token'];

describe('file modes under a permissive umask', () => {
  let savedUmask: number;
  beforeAll(() => {
    savedUmask = process.umask(0o000);
  });
  afterAll(() => {
    process.umask(savedUmask);
  });

  it('creates the data dir 0700 and its database and secret files 0600', async () => {
    const dataDir = path.join(tempDir('convault-modes-'), 'data');
    const server = await startTestServer('sqlite', { CONVAULT_DATA_DIR: dataDir });
    try {
      await server.call('GET', '/api/v2/organizations/me'); // the WAL holds writes by now
      expect(mode(dataDir)).toBe(0o700);
      for (const name of FILES) expect(mode(path.join(dataDir, name)), name).toBe(0o600);
    } finally {
      await server.close();
      fs.rmSync(path.dirname(dataDir), { recursive: true, force: true });
    }
  });

  it('tightens a data dir an earlier build left readable to others', async () => {
    const dataDir = path.join(tempDir('convault-modes-'), 'data');
    let server = await startTestServer('sqlite', { CONVAULT_DATA_DIR: dataDir });
    await server.close();
    fs.chmodSync(dataDir, 0o755);
    for (const name of FILES) if (fs.existsSync(path.join(dataDir, name))) fs.chmodSync(path.join(dataDir, name), 0o644);
    server = await startTestServer('sqlite', { CONVAULT_DATA_DIR: dataDir });
    try {
      await server.call('GET', '/api/v2/organizations/me');
      expect(mode(dataDir)).toBe(0o700);
      for (const name of FILES) if (fs.existsSync(path.join(dataDir, name))) expect(mode(path.join(dataDir, name)), name).toBe(0o600);
    } finally {
      await server.close();
      fs.rmSync(path.dirname(dataDir), { recursive: true, force: true });
    }
  });
});
