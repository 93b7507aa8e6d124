import { describe, expect, it } from 'vitest';
import { ConfigError, SECRET_VARIABLES, loadConfig } from '../src/config.js';

describe('configuration', () => {
  it('has the documented defaults', () => {
    const c = loadConfig({});
    expect(c.port).toBe(8080);
    expect(c.kms.localPort).toBe(8081);
    expect(c.kms.region).toBe('us-east-1');
    expect(c.kms.allowedRegions).toEqual(['us-east-1']);
    expect(c.kms.encryptionContextKey).toBe('convault-organization-id');
    expect(c.databaseUrl).toBeUndefined();
    expect(c.dataKeys).toEqual({ rotateSeconds: 3600, maxConversations: 10_000, cacheMaxAgeSeconds: 60 });
    expect(c.dataDir.endsWith('/data')).toBe(true);
  });

  it('derives the local KMS port from PORT and lets flags override the environment', () => {
    expect(loadConfig({ PORT: '9000' }).kms.localPort).toBe(9001);
    expect(loadConfig({ PORT: '9000', CONVAULT_LOCAL_KMS_PORT: '7000' }).kms.localPort).toBe(7000);
    expect(loadConfig({ PORT: '9000' }, { PORT: '9100' }).port).toBe(9100);
    expect(loadConfig({ CONVAULT_ALLOWED_REGIONS: 'eu-west-1, us-east-1' }).kms.allowedRegions).toEqual(['eu-west-1', 'us-east-1']);
  });

  it('treats empty strings as unset', () => {
    expect(loadConfig({ DATABASE_URL: '', PORT: '' }).port).toBe(8080);
  });

  it.each([
    ['PORT', 'eighty'],
    ['PORT', '70000'],
    ['DATABASE_URL', 'mysql://localhost/db'],
    ['CONVAULT_BOOTSTRAP_TOKEN', 'short'],
    ['CONVAULT_KMS_ENDPOINT', 'not a url'],
    ['CONVAULT_LOCAL_KMS_ROOT_KEY', 'abcd'],
    ['AWS_REGION', 'Mars'],
    ['CONVAULT_PLATFORM_ACCOUNT_ID', '1234'],
    ['CONVAULT_ALLOWED_REGIONS', 'us-east-1,nowhere'],
    ['CONVAULT_DATA_KEY_ROTATE_S', '-5'],
    ['CONVAULT_KEY_CACHE_MAX_AGE_S', '0'],
    ['LOG_LEVEL', 'loud'],
  ])('rejects %s=%s with a one-line message naming the variable', (name, value) => {
    let error: unknown;
    try {
      loadConfig({ [name]: value });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toContain(name);
    expect(message).not.toContain('\n');
  });

  it.each([
    ['CONVAULT_BOOTSTRAP_TOKEN', 'hunter2-short'],
    ['CONVAULT_LOCAL_KMS_ROOT_KEY', 'ab'.repeat(31) + 'a'],
    ['CONVAULT_LOCAL_KMS_ROOT_KEY', 'zz'.repeat(32)],
    ['CONVAULT_WEBHOOK_SECRET', 'hunter2-short'],
    ['DATABASE_URL', 'mysql://admin:hunter2-password@db.internal/convault'],
    ['DATABASE_URL', 'admin:hunter2-password@db.internal'],
    ['CONVAULT_WEBHOOK_URL', 'not a url https://user:hunter2-password@hooks'],
    ['CONVAULT_KMS_ENDPOINT', 'ftp//user:hunter2-password@kms'],
  ])('names %s but never prints its secret value', (name, value) => {
    let message = '';
    try {
      loadConfig({ [name]: value });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain(name);
    expect(message).not.toContain(value);
    expect(message).not.toContain('hunter2');
    // Not even most of a secret (a root key one character short once printed 63 of its 64).
    if (SECRET_VARIABLES.has(name)) for (const part of [value.slice(0, 8), value.slice(-8)]) expect(message).not.toContain(part);
  });
});
