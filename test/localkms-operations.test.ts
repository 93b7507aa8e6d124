import { randomBytes } from 'node:crypto';
import {
  AlreadyExistsException,
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DeleteAliasCommand,
  DescribeKeyCommand,
  DryRunOperationException,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  GetKeyPolicyCommand,
  IncorrectKeyException,
  InvalidAliasNameException,
  InvalidArnException,
  InvalidCiphertextException,
  InvalidKeyUsageException,
  InvalidMarkerException,
  ListAliasesCommand,
  ListKeysCommand,
  MalformedPolicyDocumentException,
  NotFoundException,
  PutKeyPolicyCommand,
  UnsupportedOperationException,
  UpdateAliasCommand,
  type KMSClient,
} from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKmsClient } from '../src/kms/client-factory.js';
import { localKmsClient, signedKmsPost } from './support/local-kms.js';
import { startLocalKms, type LocalKms } from '../src/localkms/index.js';
import { sqliteTarget } from './support/databases.js';

/** Every operation and every error, through the official SDK against a local KMS on a free port. */

const CUSTOMER = '111122223333';
const REGION = 'us-east-1';

let kms: LocalKms;
let closeDb: () => Promise<void>;
let client: KMSClient;
const clientFor = (accessKeyId: string, region = REGION) => localKmsClient(kms, accessKeyId, { region, maxAttempts: 1 });

beforeAll(async () => {
  const handle = await sqliteTarget.open();
  closeDb = handle.close;
  kms = await startLocalKms({ db: handle.db, dialect: handle.dialect, rootKey: randomBytes(32), port: 0 });
  client = clientFor(CUSTOMER);
});

afterAll(async () => {
  await kms.close();
  await closeDb();
});

/** The rejection, which must be a typed SDK error with AWS's name and an HTTP status. */
async function rejection(p: Promise<unknown>): Promise<Error & { $metadata: { httpStatusCode?: number } }> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected the call to fail').toBeInstanceOf(Error);
  return err as Error & { $metadata: { httpStatusCode?: number } };
}

async function newKey(description = 'test key', c = client) {
  return (await c.send(new CreateKeyCommand({ Description: description }))).KeyMetadata!;
}

describe('CreateKey and DescribeKey', () => {
  it('creates an enabled symmetric key in the caller account and region', async () => {
    const before = Date.now();
    const meta = await newKey('contact center');
    expect(meta).toMatchObject({
      AWSAccountId: CUSTOMER,
      Arn: `arn:aws:kms:${REGION}:${CUSTOMER}:key/${meta.KeyId}`,
      Enabled: true,
      Description: 'contact center',
      KeyUsage: 'ENCRYPT_DECRYPT',
      KeyState: 'Enabled',
      Origin: 'AWS_KMS',
      KeyManager: 'CUSTOMER',
      KeySpec: 'SYMMETRIC_DEFAULT',
      CustomerMasterKeySpec: 'SYMMETRIC_DEFAULT',
      EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'],
      MultiRegion: false,
    });
    expect(meta.KeyId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(meta.CreationDate!.getTime()).toBeGreaterThanOrEqual(before - 1000);
  });

  it('creates multi-Region keys with an mrk- id', async () => {
    const meta = (await client.send(new CreateKeyCommand({ MultiRegion: true }))).KeyMetadata!;
    expect(meta.KeyId).toMatch(/^mrk-[0-9a-f]{32}$/);
    expect(meta.MultiRegion).toBe(true);
    expect(meta.MultiRegionConfiguration?.PrimaryKey?.Arn).toBe(meta.Arn);
  });

  it('refuses what the local KMS does not do: asymmetric keys, imported material', async () => {
    expect(await rejection(client.send(new CreateKeyCommand({ KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' })))).toBeInstanceOf(UnsupportedOperationException);
    expect(await rejection(client.send(new CreateKeyCommand({ Origin: 'EXTERNAL' })))).toBeInstanceOf(UnsupportedOperationException);
  });

  it('refuses a malformed policy, and one that would lock the caller out', async () => {
    expect(await rejection(client.send(new CreateKeyCommand({ Policy: '{"Statement": 5}' })))).toBeInstanceOf(MalformedPolicyDocumentException);
    const lockout = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: '999988887777' }, Action: 'kms:*', Resource: '*' }] });
    const err = await rejection(client.send(new CreateKeyCommand({ Policy: lockout })));
    expect(err).toBeInstanceOf(MalformedPolicyDocumentException);
    expect(err.message).toMatch(/will not allow you to update the key policy/);
    const bypassed = await client.send(new CreateKeyCommand({ Policy: lockout, BypassPolicyLockoutSafetyCheck: true }));
    expect(bypassed.KeyMetadata?.KeyState).toBe('Enabled');
  });

  it('describes a key by key id, key ARN, alias name and alias ARN', async () => {
    const meta = await newKey();
    await client.send(new CreateAliasCommand({ AliasName: 'alias/describe-me', TargetKeyId: meta.KeyId }));
    for (const keyId of [meta.KeyId!, meta.Arn!, 'alias/describe-me', `arn:aws:kms:${REGION}:${CUSTOMER}:alias/describe-me`]) {
      expect((await client.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata?.Arn, keyId).toBe(meta.Arn);
    }
  });

  it.each([
    ['an unknown key id', '00000000-0000-4000-8000-000000000000', NotFoundException],
    ['an unknown alias', 'alias/nope', NotFoundException],
    ['garbage', 'not-a-key', NotFoundException],
    ['a malformed ARN', 'arn:aws:kms:us-east-1:123:thing/x', InvalidArnException],
  ])('reports %s', async (_name, keyId, type) => {
    const err = await rejection(client.send(new DescribeKeyCommand({ KeyId: keyId })));
    expect(err).toBeInstanceOf(type);
    expect(err.name).toBe(type.name);
    expect(err.$metadata.httpStatusCode).toBe(400);
  });

  it('keeps keys per region: the same ARN is NotFound from another region', async () => {
    const meta = await newKey();
    const err = await rejection(clientFor(CUSTOMER, 'eu-west-1').send(new DescribeKeyCommand({ KeyId: meta.Arn })));
    expect(err).toBeInstanceOf(NotFoundException);
  });
});

describe('ListKeys', () => {
  it('pages through the caller account and region only', async () => {
    const own = clientFor('222233334444', 'ap-southeast-2');
    const created = [];
    for (let i = 0; i < 5; i++) created.push((await newKey(`k${i}`, own)).KeyId!);
    await newKey('other account'); // 111122223333 must not appear
    const seen: string[] = [];
    let marker: string | undefined;
    let pages = 0;
    do {
      const page = await own.send(new ListKeysCommand({ Limit: 2, Marker: marker }));
      seen.push(...page.Keys!.map((k) => k.KeyId!));
      for (const k of page.Keys!) expect(k.KeyArn).toBe(`arn:aws:kms:ap-southeast-2:222233334444:key/${k.KeyId}`);
      marker = page.Truncated ? page.NextMarker : undefined;
      pages++;
    } while (marker);
    expect(pages).toBe(3);
    expect(seen.sort()).toEqual(created.sort());
  });

  it('rejects a marker it did not issue', async () => {
    expect(await rejection(client.send(new ListKeysCommand({ Marker: 'bogus!' })))).toBeInstanceOf(InvalidMarkerException);
  });
});

describe('aliases', () => {
  it('creates, lists, retargets and deletes', async () => {
    const k1 = await newKey();
    const k2 = await newKey();
    await client.send(new CreateAliasCommand({ AliasName: 'alias/team/one', TargetKeyId: k1.Arn }));
    const listed = await client.send(new ListAliasesCommand({ KeyId: k1.KeyId }));
    expect(listed.Aliases).toEqual([
      expect.objectContaining({ AliasName: 'alias/team/one', AliasArn: `arn:aws:kms:${REGION}:${CUSTOMER}:alias/team/one`, TargetKeyId: k1.KeyId }),
    ]);
    expect(listed.Aliases![0]!.CreationDate).toBeInstanceOf(Date);
    await client.send(new UpdateAliasCommand({ AliasName: 'alias/team/one', TargetKeyId: k2.KeyId }));
    expect((await client.send(new DescribeKeyCommand({ KeyId: 'alias/team/one' }))).KeyMetadata?.KeyId).toBe(k2.KeyId);
    expect((await client.send(new ListAliasesCommand({ KeyId: k1.KeyId }))).Aliases).toEqual([]);
    await client.send(new DeleteAliasCommand({ AliasName: 'alias/team/one' }));
    expect(await rejection(client.send(new DescribeKeyCommand({ KeyId: 'alias/team/one' })))).toBeInstanceOf(NotFoundException);
    expect(await rejection(client.send(new DeleteAliasCommand({ AliasName: 'alias/team/one' })))).toBeInstanceOf(NotFoundException);
    expect(await rejection(client.send(new UpdateAliasCommand({ AliasName: 'alias/team/one', TargetKeyId: k1.KeyId })))).toBeInstanceOf(NotFoundException);
  });

  it('pages ListAliases', async () => {
    const c = clientFor('333344445555');
    const k = await newKey('k', c);
    for (const n of ['a', 'b', 'c']) await c.send(new CreateAliasCommand({ AliasName: `alias/page-${n}`, TargetKeyId: k.KeyId }));
    const first = await c.send(new ListAliasesCommand({ Limit: 2 }));
    expect(first.Aliases!.map((a) => a.AliasName)).toEqual(['alias/page-a', 'alias/page-b']);
    expect(first.Truncated).toBe(true);
    const second = await c.send(new ListAliasesCommand({ Limit: 2, Marker: first.NextMarker }));
    expect(second.Aliases!.map((a) => a.AliasName)).toEqual(['alias/page-c']);
    expect(second.Truncated).toBe(false);
  });

  it('refuses a duplicate alias', async () => {
    const k = await newKey();
    await client.send(new CreateAliasCommand({ AliasName: 'alias/dup', TargetKeyId: k.KeyId }));
    const err = await rejection(client.send(new CreateAliasCommand({ AliasName: 'alias/dup', TargetKeyId: k.KeyId })));
    expect(err).toBeInstanceOf(AlreadyExistsException);
    expect(err.message).toContain(`arn:aws:kms:${REGION}:${CUSTOMER}:alias/dup`);
  });

  it.each([
    ['contact-center', InvalidAliasNameException],
    ['alias/', InvalidAliasNameException],
    ['alias/aws/s3', InvalidAliasNameException],
    ['alias/has space', 'ValidationException'],
    [`alias/${'x'.repeat(251)}`, 'ValidationException'],
  ] as const)('refuses the alias name %s', async (name, type) => {
    const k = await newKey();
    const err = await rejection(client.send(new CreateAliasCommand({ AliasName: name, TargetKeyId: k.KeyId })));
    if (typeof type === 'string') expect(err.name).toBe(type);
    else expect(err).toBeInstanceOf(type);
  });

  it('takes targets by key id or key ARN only, as AWS does', async () => {
    const k = await newKey();
    await client.send(new CreateAliasCommand({ AliasName: 'alias/first', TargetKeyId: k.KeyId }));
    expect(await rejection(client.send(new CreateAliasCommand({ AliasName: 'alias/second', TargetKeyId: 'alias/first' })))).toBeInstanceOf(NotFoundException);
    expect(await rejection(client.send(new CreateAliasCommand({ AliasName: 'alias/third', TargetKeyId: '00000000-0000-4000-8000-000000000000' })))).toBeInstanceOf(
      NotFoundException,
    );
  });
});

describe('Encrypt, Decrypt, GenerateDataKey*', () => {
  it('round-trips and Decrypt returns the exact key ARN that encrypted', async () => {
    const k = await newKey();
    await client.send(new CreateAliasCommand({ AliasName: 'alias/crypto', TargetKeyId: k.KeyId }));
    const context = { 'convault-organization-id': 'org-1', purpose: 'test' };
    const enc = await client.send(new EncryptCommand({ KeyId: 'alias/crypto', Plaintext: Buffer.from('card 4111'), EncryptionContext: context }));
    expect(enc.KeyId).toBe(k.Arn);
    expect(enc.EncryptionAlgorithm).toBe('SYMMETRIC_DEFAULT');
    const dec = await client.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { purpose: 'test', 'convault-organization-id': 'org-1' } }));
    expect(Buffer.from(dec.Plaintext!).toString()).toBe('card 4111');
    expect(dec.KeyId).toBe(k.Arn);
    for (const keyId of [k.KeyId!, k.Arn!, 'alias/crypto']) {
      const again = await client.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: context, KeyId: keyId }));
      expect(again.KeyId).toBe(k.Arn);
    }
  });

  it('binds the encryption context: a different or missing context is InvalidCiphertextException', async () => {
    const k = await newKey();
    const enc = await client.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: Buffer.from('x'), EncryptionContext: { org: 'a' } }));
    for (const EncryptionContext of [{ org: 'b' }, {}, { org: 'a', more: '1' }, { ORG: 'a' }] as Record<string, string>[]) {
      expect(await rejection(client.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext })))).toBeInstanceOf(InvalidCiphertextException);
    }
  });

  it('rejects tampered and foreign blobs with InvalidCiphertextException', async () => {
    const k = await newKey();
    const enc = await client.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: Buffer.from('hello') }));
    const tampered = Buffer.from(enc.CiphertextBlob!);
    tampered[tampered.length - 1] ^= 1;
    expect(await rejection(client.send(new DecryptCommand({ CiphertextBlob: tampered })))).toBeInstanceOf(InvalidCiphertextException);
    expect(await rejection(client.send(new DecryptCommand({ CiphertextBlob: randomBytes(80) })))).toBeInstanceOf(InvalidCiphertextException);
  });

  it('rejects a KeyId that is not the encrypting key with IncorrectKeyException', async () => {
    const k1 = await newKey();
    const k2 = await newKey();
    const enc = await client.send(new EncryptCommand({ KeyId: k1.KeyId, Plaintext: Buffer.from('x') }));
    expect(await rejection(client.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, KeyId: k2.Arn })))).toBeInstanceOf(IncorrectKeyException);
  });

  it('bounds the encryption context', async () => {
    const k = await newKey();
    const err = await rejection(client.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: Buffer.from('x'), EncryptionContext: { big: 'v'.repeat(9000) } })));
    expect(err.name).toBe('ValidationException');
  });

  it('validates sizes, algorithms and DryRun', async () => {
    const k = await newKey();
    const tooBig = await rejection(client.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: Buffer.alloc(4097) })));
    expect(tooBig.name).toBe('ValidationException');
    expect((await client.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: Buffer.alloc(4096, 1) }))).CiphertextBlob).toBeDefined();
    expect(await rejection(client.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: Buffer.from('x'), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' })))).toBeInstanceOf(
      InvalidKeyUsageException,
    );
    expect(await rejection(client.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: Buffer.from('x'), DryRun: true })))).toBeInstanceOf(DryRunOperationException);
  });

  it.each([
    [{ KeySpec: 'AES_256' as const }, 32],
    [{ KeySpec: 'AES_128' as const }, 16],
    [{ NumberOfBytes: 1 }, 1],
    [{ NumberOfBytes: 1024 }, 1024],
  ])('GenerateDataKey %j gives %i bytes that Decrypt gives back', async (spec, bytes) => {
    const k = await newKey();
    const context = { 'convault-organization-id': 'org-7' };
    const out = await client.send(new GenerateDataKeyCommand({ KeyId: k.Arn, EncryptionContext: context, ...spec }));
    expect(out.KeyId).toBe(k.Arn);
    expect(out.Plaintext).toHaveLength(bytes);
    const dec = await client.send(new DecryptCommand({ CiphertextBlob: out.CiphertextBlob, EncryptionContext: context }));
    expect(Buffer.from(dec.Plaintext!).equals(Buffer.from(out.Plaintext!))).toBe(true);
  });

  it.each([
    [{ KeySpec: 'AES_256' as const, NumberOfBytes: 32 }],
    [{}],
    [{ NumberOfBytes: 0 }],
    [{ NumberOfBytes: 1025 }],
  ])('GenerateDataKey %j is a ValidationException', async (spec) => {
    const k = await newKey();
    expect((await rejection(client.send(new GenerateDataKeyCommand({ KeyId: k.KeyId, ...spec })))).name).toBe('ValidationException');
  });

  it('GenerateDataKeyWithoutPlaintext returns only the blob', async () => {
    const k = await newKey();
    const out = await client.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: k.KeyId, KeySpec: 'AES_256', EncryptionContext: { a: 'b' } }));
    expect(out).not.toHaveProperty('Plaintext');
    expect(out.KeyId).toBe(k.Arn);
    const dec = await client.send(new DecryptCommand({ CiphertextBlob: out.CiphertextBlob, EncryptionContext: { a: 'b' } }));
    expect(dec.Plaintext).toHaveLength(32);
  });
});

describe('GetKeyPolicy and PutKeyPolicy', () => {
  it('returns the default policy, then the one put', async () => {
    const k = await newKey();
    const got = await client.send(new GetKeyPolicyCommand({ KeyId: k.KeyId, PolicyName: 'default' }));
    expect(got.PolicyName).toBe('default');
    expect(JSON.parse(got.Policy!).Statement).toEqual([
      expect.objectContaining({ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${CUSTOMER}:root` }, Action: 'kms:*', Resource: '*' }),
    ]);
    const policy = JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Sid: 'Root', Effect: 'Allow', Principal: { AWS: CUSTOMER }, Action: 'kms:*', Resource: '*' }],
    });
    await client.send(new PutKeyPolicyCommand({ KeyId: k.Arn, PolicyName: 'default', Policy: policy }));
    expect((await client.send(new GetKeyPolicyCommand({ KeyId: k.KeyId }))).Policy).toBe(policy);
  });

  it('refuses other policy names, malformed documents and aliases', async () => {
    const k = await newKey();
    await client.send(new CreateAliasCommand({ AliasName: 'alias/policy-key', TargetKeyId: k.KeyId }));
    expect(await rejection(client.send(new GetKeyPolicyCommand({ KeyId: k.KeyId, PolicyName: 'other' })))).toBeInstanceOf(NotFoundException);
    expect(await rejection(client.send(new PutKeyPolicyCommand({ KeyId: k.KeyId, Policy: 'nope' })))).toBeInstanceOf(MalformedPolicyDocumentException);
    expect(await rejection(client.send(new GetKeyPolicyCommand({ KeyId: 'alias/policy-key' })))).toBeInstanceOf(NotFoundException);
  });
});

describe('the wire protocol', () => {
  const post = async (target: string | undefined, body: string, headers: Record<string, string> = {}) =>
    signedKmsPost(kms.url, await kms.credentialsFor(CUSTOMER), target, body, headers);

  it('answers JSON 1.1 with base64 blobs', async () => {
    const res = await post('TrentService.CreateKey', '{}');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-amz-json-1.1');
    const created = (await res.json()) as { KeyMetadata: { KeyId: string } };
    const enc = (await (await post('TrentService.Encrypt', JSON.stringify({ KeyId: created.KeyMetadata.KeyId, Plaintext: 'aGk=' }))).json()) as {
      CiphertextBlob: string;
    };
    expect(Buffer.from(enc.CiphertextBlob, 'base64')[0]).toBe(1);
  });

  it.each([
    ['an operation it does not support', 'TrentService.Sign', '{}', {}, 400, 'UnknownOperationException'],
    ['no X-Amz-Target', undefined, '{}', {}, 400, 'UnknownOperationException'],
    ['a body that is not JSON', 'TrentService.ListKeys', '{', {}, 400, 'SerializationException'],
    ['a field of the wrong type', 'TrentService.ListKeys', '{"Limit":"ten"}', {}, 400, 'SerializationException'],
    ['a blob that is not base64', 'TrentService.Decrypt', '{"CiphertextBlob":"%%%"}', {}, 400, 'SerializationException'],
    ['no Authorization', 'TrentService.ListKeys', '{}', { authorization: '' }, 400, 'MissingAuthenticationTokenException'],
    ['a credential for another service', 'TrentService.ListKeys', '{}', {
      authorization: `AWS4-HMAC-SHA256 Credential=${CUSTOMER}/20260101/${REGION}/s3/aws4_request, SignedHeaders=host, Signature=${'0'.repeat(64)}`,
    }, 400, 'InvalidSignatureException'],
  ] as const)('rejects %s', async (_name, target, body, headers, status, type) => {
    const res = await post(target, body, headers as Record<string, string>);
    expect(res.status).toBe(status);
    const json = (await res.json()) as { __type: string; message: string };
    expect(json.__type).toBe(type);
    expect(json.message).toBeTruthy();
  });

  it('binds a __proto__ context pair like any other, and refuses lone surrogates', async () => {
    const created = (await (await post('TrentService.CreateKey', '{}')).json()) as { KeyMetadata: { KeyId: string } };
    const keyId = created.KeyMetadata.KeyId;
    const enc = await post('TrentService.Encrypt', `{"KeyId":"${keyId}","Plaintext":"aGk=","EncryptionContext":{"__proto__":"bound"}}`);
    expect(enc.status).toBe(200);
    const blob = ((await enc.json()) as { CiphertextBlob: string }).CiphertextBlob;
    const without = await post('TrentService.Decrypt', JSON.stringify({ CiphertextBlob: blob }));
    expect(((await without.json()) as { __type: string }).__type).toBe('InvalidCiphertextException');
    const withPair = await post('TrentService.Decrypt', `{"CiphertextBlob":"${blob}","EncryptionContext":{"__proto__":"bound"}}`);
    expect(withPair.status).toBe(200);
    for (const context of ['{"k":"\\ud800"}', '{"\\udc00":"v"}']) {
      const res = await post('TrentService.Encrypt', `{"KeyId":"${keyId}","Plaintext":"aGk=","EncryptionContext":${context}}`);
      expect(((await res.json()) as { __type: string }).__type, context).toBe('ValidationException');
    }
  });

  it('answers an oversized body with ValidationException rather than dropping the connection', async () => {
    const res = await post('TrentService.ListKeys', JSON.stringify({ Limit: 10, Pad: 'x'.repeat(300 * 1024) }));
    expect(res.status).toBe(400);
    expect(((await res.json()) as { __type: string }).__type).toBe('ValidationException');
  });

  it('says an unknown access key id is not recognized (through the SDK too)', async () => {
    const unknown = createKmsClient({ endpoint: kms.url, region: REGION, credentials: { accessKeyId: 'AKIANOTISSUED00001', secretAccessKey: 'x' }, maxAttempts: 1 });
    const err = await rejection(unknown.send(new ListKeysCommand({})));
    expect(err.name).toBe('UnrecognizedClientException');
  });

  it('answers other paths and methods with 404', async () => {
    expect((await fetch(`${kms.url}/`)).status).toBe(404);
  });
});
