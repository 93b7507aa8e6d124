import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { forgetLocalKmsUrl, kmsAddressForCli, LOCAL_KMS_RECORD, recordLocalKmsUrl, unreachableKmsMessage } from '../src/kms/local-kms-address.js';

/**
 * How the CLI finds the KMS of a running server: the environment first, then an explicit port, then
 * the URL the server recorded in its data dir, then the default port.
 */

let dataDir: string;
beforeEach(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'convault-kms-address-'));
});
afterEach(() => fs.rmSync(dataDir, { recursive: true, force: true }));

const config = (env: Record<string, string> = {}) => loadConfig({ CONVAULT_DATA_DIR: dataDir, ...env });
const recordFile = () => path.join(dataDir, LOCAL_KMS_RECORD);

describe('the local KMS address the CLI uses', () => {
  it('is the URL the server recorded in the data dir, until the server forgets it', () => {
    expect(LOCAL_KMS_RECORD).toBe('local-kms.json');
    recordLocalKmsUrl(dataDir, 'http://127.0.0.1:40123');
    const text = fs.readFileSync(recordFile(), 'utf8');
    expect(JSON.parse(text)).toEqual({ url: 'http://127.0.0.1:40123', pid: process.pid });
    expect(text.endsWith('}\n')).toBe(true);
    expect(kmsAddressForCli(config())).toEqual({ endpoint: 'http://127.0.0.1:40123', source: `recorded by the server in ${recordFile()}` });

    // Another server recorded its own since: ours does not remove it.
    forgetLocalKmsUrl(dataDir, 'http://127.0.0.1:40999');
    expect(fs.existsSync(recordFile())).toBe(true);
    forgetLocalKmsUrl(dataDir, 'http://127.0.0.1:40123');
    expect(fs.existsSync(recordFile())).toBe(false);
    // Nothing recorded: forgetting is a no-op.
    expect(() => forgetLocalKmsUrl(dataDir, 'http://127.0.0.1:40123')).not.toThrow();
    expect(kmsAddressForCli(config())).toEqual({
      endpoint: 'http://127.0.0.1:8081',
      source: `the default port, PORT+1; no running server recorded one in ${dataDir}`,
    });
  });

  it('recording is best effort: a data dir that cannot be written is not an error', () => {
    expect(() => recordLocalKmsUrl(path.join(dataDir, 'missing', 'dir'), 'http://127.0.0.1:40123')).not.toThrow();
  });

  it.each([
    ['not JSON', 'http://127.0.0.1:40123'],
    ['a URL that is not a string', JSON.stringify({ url: 40123, pid: 1 })],
    ['a URL in a list', JSON.stringify({ url: ['http://127.0.0.1:40123'], pid: 1 })],
    ['another host', JSON.stringify({ url: 'http://localhost:40123', pid: 1 })],
    ['a path after the port', JSON.stringify({ url: 'http://127.0.0.1:40123/kms', pid: 1 })],
    ['something before the scheme', JSON.stringify({ url: 'xhttp://127.0.0.1:40123', pid: 1 })],
    ['no port', JSON.stringify({ url: 'http://127.0.0.1:', pid: 1 })],
    ['a port that is not a number', JSON.stringify({ url: 'http://127.0.0.1:kms', pid: 1 })],
  ])('ignores a record holding %s', (_what, content) => {
    fs.writeFileSync(recordFile(), content);
    expect(kmsAddressForCli(config()).endpoint).toBe('http://127.0.0.1:8081');
  });

  it('prefers the environment and an explicit port over the record', () => {
    recordLocalKmsUrl(dataDir, 'http://127.0.0.1:40123');
    expect(kmsAddressForCli(config({ CONVAULT_KMS_ENDPOINT: 'http://kms.example:4000' }))).toEqual({
      endpoint: 'http://kms.example:4000',
      source: 'CONVAULT_KMS_ENDPOINT',
    });
    expect(kmsAddressForCli(config({ CONVAULT_LOCAL_KMS_PORT: '9443', PORT: '5000' }))).toEqual({
      endpoint: 'http://127.0.0.1:9443',
      source: 'CONVAULT_LOCAL_KMS_PORT',
    });
    expect(kmsAddressForCli(config({ PORT: '5000' }))).toEqual({ endpoint: 'http://127.0.0.1:5001', source: 'PORT=5000, local KMS at PORT+1' });
  });

  it('names every way to reach the right KMS when it cannot be reached', () => {
    const message = unreachableKmsMessage({ endpoint: 'http://127.0.0.1:8081', source: 'the default port' }, '/srv/convault');
    expect(message).toContain('cannot reach a KMS at http://127.0.0.1:8081 (the default port). Start the server (npm start, or ./convault kms serve');
    expect(message).toContain('CONVAULT_DATA_DIR, now /srv/convault; the server records its local KMS URL in local-kms.json there');
    expect(message).toContain('or set the PORT (local KMS at PORT+1) or CONVAULT_LOCAL_KMS_PORT the server was started with, or CONVAULT_KMS_ENDPOINT=<url> for any other KMS.');
  });
});
