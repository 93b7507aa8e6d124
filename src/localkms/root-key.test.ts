import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openWithRootKey, resolveLocalKmsRootKey, RootKeyError, ROOT_KEY_FILE, sealWithRootKey } from './root-key.js';

const dirs: string[] = [];
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'localkms-root-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('resolveLocalKmsRootKey', () => {
  it('takes the configured hex key', () => {
    const hex = 'ab'.repeat(32);
    expect(resolveLocalKmsRootKey({ rootKeyHex: hex, dataDir: tmp() }).toString('hex')).toBe(hex);
  });

  it('rejects a configured key of the wrong size', () => {
    expect(() => resolveLocalKmsRootKey({ rootKeyHex: 'abcd', dataDir: tmp() })).toThrow(RootKeyError);
  });

  it('creates a random key file with mode 0600 once, then reuses it', () => {
    const dir = path.join(tmp(), 'nested');
    const first = resolveLocalKmsRootKey({ dataDir: dir });
    const file = path.join(dir, ROOT_KEY_FILE);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(first).toHaveLength(32);
    expect(resolveLocalKmsRootKey({ dataDir: dir }).equals(first)).toBe(true);
  });

  it('refuses a damaged key file rather than replacing it', () => {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, ROOT_KEY_FILE), 'not hex');
    expect(() => resolveLocalKmsRootKey({ dataDir: dir })).toThrow(/64 hex/);
  });
});

describe('sealing under the root key', () => {
  it('opens only with the same key and label', () => {
    const key = Buffer.alloc(32, 1);
    const sealed = sealWithRootKey(key, 'k1', Buffer.from('material'));
    expect(openWithRootKey(key, 'k1', sealed).toString()).toBe('material');
    expect(() => openWithRootKey(key, 'k2', sealed)).toThrow(RootKeyError);
    expect(() => openWithRootKey(Buffer.alloc(32, 2), 'k1', sealed)).toThrow(RootKeyError);
  });
});
