import { z } from 'zod';
import { decodeBase64Strict, XKS_LIMITS, type RequestMetadata } from '../xks-protocol/index.js';
import { XksProxyError } from './errors.js';

/**
 * Request bodies of the key operations, checked field by field: a malformed field is a
 * ValidationException that names it. Fields the specification may add later are ignored.
 */

const arn = z.string().min(1).max(XKS_LIMITS.maxArnChars);
// kmsRequestId and kmsOperation are opaque: any string, no structure checked (the specification insists).
const opaque = z.string().max(XKS_LIMITS.maxArnChars);

const keyRequestMetadata = z.object({
  awsPrincipalArn: arn,
  awsSourceVpc: opaque.optional(),
  awsSourceVpce: opaque.optional(),
  kmsKeyArn: arn.optional(),
  kmsOperation: opaque,
  kmsRequestId: opaque,
  kmsViaService: opaque.optional(),
});

const cryptoRequestMetadata = keyRequestMetadata.extend({ kmsKeyArn: arn });

const base64Field = z.string();

export const getKeyMetadataBody = z.object({ requestMetadata: keyRequestMetadata });

export const encryptBody = z.object({
  requestMetadata: cryptoRequestMetadata,
  plaintext: base64Field,
  encryptionAlgorithm: z.literal('AES_GCM'),
  additionalAuthenticatedData: base64Field.optional(),
  ciphertextDataIntegrityValueAlgorithm: z.literal('SHA_256').optional(),
});

export const decryptBody = z.object({
  requestMetadata: cryptoRequestMetadata,
  ciphertext: base64Field,
  ciphertextMetadata: base64Field.optional(),
  encryptionAlgorithm: z.literal('AES_GCM'),
  additionalAuthenticatedData: base64Field.optional(),
  initializationVector: base64Field,
  authenticationTag: base64Field,
});

export function parseBody<T extends z.ZodType>(schema: T, raw: Buffer): z.infer<T> {
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new XksProxyError('ValidationException', 'The request body is not JSON');
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new XksProxyError('ValidationException', `${issue.path.join('.') || 'body'}: ${issue.message}`);
  }
  return parsed.data;
}

/** Decodes a Base64 field; absent → undefined. */
export function base64(value: string | undefined, field: string): Buffer | undefined {
  if (value === undefined) return undefined;
  const bytes = decodeBase64Strict(value);
  if (!bytes) throw new XksProxyError('ValidationException', `${field} is not standard padded Base64`);
  return bytes;
}

/** What the proxy logs of a request (the specification asks for kmsRequestId above all); never plaintext. */
export function metadataForLog(body: unknown): Partial<RequestMetadata> {
  const m = (body as { requestMetadata?: Record<string, unknown> } | undefined)?.requestMetadata;
  if (!m || typeof m !== 'object') return {};
  const pick = (k: keyof RequestMetadata) => (typeof m[k] === 'string' ? { [k]: (m[k] as string).slice(0, 256) } : {});
  return { ...pick('kmsRequestId'), ...pick('kmsOperation'), ...pick('awsPrincipalArn'), ...pick('kmsKeyArn') };
}
