import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { platformKmsClients } from '../src/server/kms-setup.js';

describe('platform KMS clients', () => {
  it('sign with the credentials handed over in process, else with the default chain (AWS, or another node\'s local KMS)', async () => {
    const config = loadConfig({ CONVAULT_KMS_ENDPOINT: 'aws', CONVAULT_PLATFORM_ACCOUNT_ID: '123456789012' });
    expect(config.kms.endpoint).toBe('aws');
    const aws = platformKmsClients(config, 'aws').clientForRegion('eu-west-1');
    expect(await aws.config.region()).toBe('eu-west-1');
    expect(aws.config.endpoint).toBeUndefined();
    const issued = { accessKeyId: 'AKIAEXAMPLEISSUED001', secretAccessKey: 'issued-secret' };
    const local = platformKmsClients(config, 'http://127.0.0.1:8081', async () => issued).clientForRegion('us-east-1');
    expect(await local.config.credentials()).toMatchObject(issued);
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    process.env.AWS_ACCESS_KEY_ID = 'AKIAFROMENVIRONMENT1';
    process.env.AWS_SECRET_ACCESS_KEY = 'env-secret';
    try {
      const external = platformKmsClients(config, 'http://127.0.0.1:8081').clientForRegion('us-east-1');
      expect(await external.config.credentials()).toMatchObject({ accessKeyId: 'AKIAFROMENVIRONMENT1', secretAccessKey: 'env-secret' });
      expect(String((await external.config.endpoint!()).hostname)).toBe('127.0.0.1');
    } finally {
      for (const [k, v] of [['AWS_ACCESS_KEY_ID', saved.id], ['AWS_SECRET_ACCESS_KEY', saved.secret]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    expect(() => loadConfig({ CONVAULT_KMS_ENDPOINT: 'kms' })).toThrow(/CONVAULT_KMS_ENDPOINT/);
  });
});
