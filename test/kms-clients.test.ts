import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { isLoopbackEndpoint } from '../src/kms/client-factory.js';
import { platformKmsClients } from '../src/server/kms-setup.js';

describe('platform KMS clients', () => {
  it('tells a local KMS on loopback from anything else', () => {
    for (const url of ['http://127.0.0.1:8081', 'http://localhost:9', 'http://[::1]:8081', 'http://127.1.2.3']) expect(isLoopbackEndpoint(url)).toBe(true);
    for (const url of ['https://kms.us-east-1.amazonaws.com', 'http://10.0.0.5:8081', 'http://kms.internal']) expect(isLoopbackEndpoint(url)).toBe(false);
  });

  it('talks to the local KMS as the platform account, and to AWS with the default credential chain and regional endpoints', async () => {
    const config = loadConfig({ CONVAULT_KMS_ENDPOINT: 'aws', CONVAULT_PLATFORM_ACCOUNT_ID: '123456789012' });
    expect(config.kms.endpoint).toBe('aws');
    const aws = platformKmsClients(config, 'aws').clientForRegion('eu-west-1');
    expect(await aws.config.region()).toBe('eu-west-1');
    expect(aws.config.endpoint).toBeUndefined();
    const local = platformKmsClients(config, 'http://127.0.0.1:8081').clientForRegion('us-east-1');
    expect((await local.config.credentials()).accessKeyId).toBe('123456789012');
    expect(() => loadConfig({ CONVAULT_KMS_ENDPOINT: 'kms' })).toThrow(/CONVAULT_KMS_ENDPOINT/);
  });
});
