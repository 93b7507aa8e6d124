import { InvalidBlobError, openBlob, readBlobKeyId, sealBlob } from '../ciphertext-blob.js';
import { KmsError, validationError } from '../errors.js';
import type { KeyRow } from '../key-store.js';
import { randomBytesFromPool } from '../random-pool.js';
import {
  encryptionContext,
  optionalBoolean,
  optionalEnum,
  optionalInteger,
  optionalString,
  optionalStringList,
  requiredBlob,
  requiredString,
  type Input,
} from './input.js';
import { arnOf, authorize, keyMaterial, liveKeyOf, requireEnabled, resolveKey, type OperationContext } from './key-access.js';

/**
 * Encrypt, Decrypt, ReEncrypt, GenerateDataKey, GenerateDataKeyWithoutPlaintext. Checks run in the
 * order: find the key → key policy (with the request's encryption context) → key state → crypto.
 */

const ANY_KEY = { aliases: true, crossAccount: true };
const ALGORITHMS = ['SYMMETRIC_DEFAULT', 'RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256', 'SM2PKE'] as const;
const MAX_BLOB = 6144;

export async function encrypt(input: Input, ctx: OperationContext) {
  const key = await resolveKey(ctx, requiredString(input, 'KeyId', { min: 1, max: 2048 }), ANY_KEY);
  const plaintext = requiredBlob(input, 'Plaintext', 1, 4096);
  const context = encryptionContext(input, 'EncryptionContext');
  requireSymmetricAlgorithm(input, 'EncryptionAlgorithm');
  rejectUnsupported(input);
  authorize(ctx, key, 'kms:Encrypt', context);
  requireEnabled(key);
  dryRun(input);
  const blob = withMaterial(ctx, key, (m) => sealBlob(m, key.key_id, plaintext, context));
  plaintext.fill(0);
  return { CiphertextBlob: blob.toString('base64'), KeyId: arnOf(key), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
}

export async function decrypt(input: Input, ctx: OperationContext) {
  const blob = requiredBlob(input, 'CiphertextBlob', 1, MAX_BLOB);
  const context = encryptionContext(input, 'EncryptionContext');
  const keyIdParam = optionalString(input, 'KeyId', { min: 1, max: 2048 });
  requireSymmetricAlgorithm(input, 'EncryptionAlgorithm');
  rejectUnsupported(input);
  const key = await blobKey(ctx, blob, keyIdParam, 'KeyId');
  authorize(ctx, key, 'kms:Decrypt', context);
  requireEnabled(key);
  dryRun(input);
  const plaintext = withMaterial(ctx, key, (m) => openOrReject(m, blob, context));
  const response = { KeyId: arnOf(key), Plaintext: plaintext.toString('base64'), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
  plaintext.fill(0);
  return response;
}

export async function reEncrypt(input: Input, ctx: OperationContext) {
  const blob = requiredBlob(input, 'CiphertextBlob', 1, MAX_BLOB);
  const sourceContext = encryptionContext(input, 'SourceEncryptionContext');
  const destinationContext = encryptionContext(input, 'DestinationEncryptionContext');
  requireSymmetricAlgorithm(input, 'SourceEncryptionAlgorithm');
  requireSymmetricAlgorithm(input, 'DestinationEncryptionAlgorithm');
  optionalStringList(input, 'GrantTokens');
  const source = await blobKey(ctx, blob, optionalString(input, 'SourceKeyId', { min: 1, max: 2048 }), 'SourceKeyId');
  const destination = await resolveKey(ctx, requiredString(input, 'DestinationKeyId', { min: 1, max: 2048 }), ANY_KEY);
  // Each side is authorised with its own context: ReEncryptFrom with the source's, ReEncryptTo with the destination's.
  authorize(ctx, source, 'kms:ReEncryptFrom', sourceContext);
  authorize(ctx, destination, 'kms:ReEncryptTo', destinationContext);
  requireEnabled(source);
  requireEnabled(destination);
  dryRun(input);
  const plaintext = withMaterial(ctx, source, (m) => openOrReject(m, blob, sourceContext));
  const sealed = withMaterial(ctx, destination, (m) => sealBlob(m, destination.key_id, plaintext, destinationContext));
  plaintext.fill(0);
  return {
    CiphertextBlob: sealed.toString('base64'),
    SourceKeyId: arnOf(source),
    KeyId: arnOf(destination),
    SourceEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
    DestinationEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
  };
}

export async function generateDataKey(input: Input, ctx: OperationContext) {
  const { key, dataKey, blob } = await makeDataKey(input, ctx, 'kms:GenerateDataKey');
  const response = { CiphertextBlob: blob.toString('base64'), Plaintext: dataKey.toString('base64'), KeyId: arnOf(key) };
  dataKey.fill(0);
  return response;
}

export async function generateDataKeyWithoutPlaintext(input: Input, ctx: OperationContext) {
  const { key, dataKey, blob } = await makeDataKey(input, ctx, 'kms:GenerateDataKeyWithoutPlaintext');
  dataKey.fill(0);
  return { CiphertextBlob: blob.toString('base64'), KeyId: arnOf(key) };
}

async function makeDataKey(input: Input, ctx: OperationContext, action: string) {
  const key = await resolveKey(ctx, requiredString(input, 'KeyId', { min: 1, max: 2048 }), ANY_KEY);
  const keySpec = optionalEnum(input, 'KeySpec', ['AES_256', 'AES_128']);
  const numberOfBytes = optionalInteger(input, 'NumberOfBytes', 1, 1024);
  if (keySpec !== undefined && numberOfBytes !== undefined) {
    throw validationError('KeySpec', 'Specify either KeySpec or NumberOfBytes, not both');
  }
  if (keySpec === undefined && numberOfBytes === undefined) {
    throw validationError('KeySpec', 'Specify either KeySpec or NumberOfBytes');
  }
  const context = encryptionContext(input, 'EncryptionContext');
  rejectUnsupported(input);
  authorize(ctx, key, action, context);
  requireEnabled(key);
  dryRun(input);
  const dataKey = randomBytesFromPool(numberOfBytes ?? (keySpec === 'AES_128' ? 16 : 32));
  const blob = withMaterial(ctx, key, (m) => sealBlob(m, key.key_id, dataKey, context));
  return { key, dataKey, blob };
}

/**
 * The key a blob names. A blob that is not ours, or names a key never seen, is an
 * InvalidCiphertextException; a key that existed but is deleted or in another region a
 * NotFoundException; a KeyId that names another key an IncorrectKeyException.
 */
async function blobKey(ctx: OperationContext, blob: Buffer, keyIdParam: string | undefined, field: string): Promise<KeyRow> {
  let blobKeyId: string;
  try {
    blobKeyId = readBlobKeyId(blob);
  } catch (err) {
    if (err instanceof InvalidBlobError) throw invalidCiphertext();
    throw err;
  }
  // One read of the key's row serves every check of this request (unknown, deleted, the KeyId pin).
  const known = await ctx.store.findKey(blobKeyId);
  if (!known) throw invalidCiphertext();
  const key = await liveKeyOf(ctx, known);
  if (!key || key.region !== ctx.caller.region) throw new KmsError('NotFoundException', `Key '${arnOf(known)}' does not exist`);
  if (keyIdParam !== undefined) {
    const named = await resolveKey(ctx, keyIdParam, ANY_KEY, key);
    if (named.key_id !== key.key_id) {
      throw new KmsError(
        'IncorrectKeyException',
        `The key ID in the request (${field}) does not identify the KMS key that encrypted the ciphertext (it names ${arnOf(named)}).`,
      );
    }
  }
  return key;
}

function openOrReject(material: Buffer, blob: Buffer, context: Record<string, string>): Buffer {
  try {
    return openBlob(material, blob, context);
  } catch (err) {
    if (err instanceof InvalidBlobError) throw invalidCiphertext();
    throw err;
  }
}

function invalidCiphertext(): KmsError {
  // AWS gives no detail, so as not to say whether the blob or the encryption context was wrong.
  return new KmsError('InvalidCiphertextException', 'The ciphertext is invalid, or the encryption context does not match the one it was encrypted with.');
}

/** `use` runs synchronously on the key's (cached, shared) material and must not keep or alter it. */
function withMaterial<T>(ctx: OperationContext, key: KeyRow, use: (material: Buffer) => T): T {
  return use(keyMaterial(ctx, key));
}

function requireSymmetricAlgorithm(input: Input, field: string): void {
  const algorithm = optionalEnum(input, field, ALGORITHMS);
  if (algorithm !== undefined && algorithm !== 'SYMMETRIC_DEFAULT') {
    throw new KmsError('InvalidKeyUsageException', `${field} ${algorithm} is not valid for a symmetric key; use SYMMETRIC_DEFAULT.`);
  }
}

function rejectUnsupported(input: Input): void {
  optionalStringList(input, 'GrantTokens');
  if (input.Recipient !== undefined && input.Recipient !== null) {
    throw new KmsError('UnsupportedOperationException', 'Recipient (Nitro Enclaves attestation) is not supported by the local KMS.');
  }
}

function dryRun(input: Input): void {
  if (optionalBoolean(input, 'DryRun')) {
    throw new KmsError('DryRunOperationException', 'The request would have succeeded, but the DryRun option is set.', 412);
  }
}

export const cryptographicOperations = {
  Encrypt: encrypt,
  Decrypt: decrypt,
  ReEncrypt: reEncrypt,
  GenerateDataKey: generateDataKey,
  GenerateDataKeyWithoutPlaintext: generateDataKeyWithoutPlaintext,
} as const;
