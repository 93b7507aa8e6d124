import { ForeignMessageError, type EncryptDataCodec } from '../../providers/encrypt-data-codec.js';
import { isKeyProviderError } from '../../providers/key-provider.js';
import { KEY_CONFIGURATION_TYPES } from '../../providers/registry.js';
import type { AuditService } from '../audit/audit-service.js';
import type { Caller } from '../auth/auth-service.js';
import { AppError, badRequest, tooLarge } from '../errors.js';
import type { ActiveKey, KeyConfigService } from '../keyconfig/keyconfig-service.js';
import { keyFailure, type KeyErrorRecorder, type KeyErrorSettings } from '../secured-data/key-errors.js';
import { LONE_SURROGATE } from '../unicode.js';
import type { OrgKeys } from '../keyconfig/org-keys.js';

/** Input limit of Encrypt Data, in characters (UTF-16 code units). */
export const MAX_ENCRYPT_CHARACTERS = 32_000;
/** Decrypt Data input limit: a 32,000-character input (≤ 96,000 UTF-8 bytes) with header and framing fits well below. */
export const MAX_ENCRYPTED_DATA_CHARACTERS = 200_000;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export interface EncryptionSettings extends KeyErrorSettings {
  /** Organizations whose keys this node remembers (default 1,000). */
  maxOrganizations?: number;
}

export interface EncryptionServiceDeps {
  keyConfigs: Pick<KeyConfigService, 'resolveActiveKey' | 'knownKeyArns'>;
  /** The organization's keys: the adapter that words a failure of its key. */
  keys: Pick<OrgKeys, 'forReference'>;
  /** Makes and opens the messages (AWS Encryption SDK messages: createEsdkMessageCodec). */
  codec: EncryptDataCodec;
  audit: Pick<AuditService, 'record'>;
  keyErrors?: KeyErrorRecorder;
  settings: EncryptionSettings;
}

export type EncryptionService = ReturnType<typeof createEncryptionService>;

const generalError = (status: number, message: string) => new AppError(status, status >= 500 ? 'encryption.failed' : 'bad.request', message, 'GeneralError');

/**
 * Encrypt Data / Decrypt Data: messages under the organization's key that the customer's own back
 * end decrypts with the same key, without convault (the codec makes and opens them).
 */
export function createEncryptionService(deps: EncryptionServiceDeps) {
  const { settings, codec } = deps;

  // Key ARNs this node's encrypts used per org: an alias retargeted in AWS resolves to a new key
  // before a probe or a save records it, and the messages made under it are the org's all the same.
  const encryptedUnder = new Map<string, Set<string>>();
  function rememberKeys(orgId: string, arns: string[]): void {
    let set = encryptedUnder.get(orgId);
    if (!set) {
      if (encryptedUnder.size >= (settings.maxOrganizations ?? 1_000)) encryptedUnder.delete(encryptedUnder.keys().next().value!);
      encryptedUnder.set(orgId, (set = new Set()));
    }
    for (const arn of arns) if (set.size < 100) set.add(arn);
  }

  async function customerKey(orgId: string): Promise<ActiveKey> {
    const key = await deps.keyConfigs.resolveActiveKey(orgId);
    const spec = KEY_CONFIGURATION_TYPES[key.type];
    if (spec.customerOwned && !spec.supportsEncryptData) {
      // The messages are AWS Encryption SDK messages the customer's back end opens with its own key;
      // a key behind an XKS proxy has no keyring that back end could use, so none is made (docs/API.md).
      throw new AppError(
        424,
        'customer.key.unsupported',
        `Encrypt Data and Decrypt Data are not available for keyConfigurationType ${key.type}: their messages must be readable by your own back end with your key, and no keyring for a key behind an XKS proxy exists for it. Secured data (…/conversations/{id}/secureddata) works with this key; for Encrypt/Decrypt Data configure keyConfigurationType KmsSymmetric.`,
        'EncryptDataNotSupported',
      );
    }
    if (!spec.supportsEncryptData) {
      throw new AppError(
        424,
        'customer.key.not.configured',
        'Encrypt Data and Decrypt Data need the organization\'s own KMS key: configure one (keyConfigurationType KmsSymmetric) under /api/v2/conversations/keyconfigurations.',
        'CustomerKeyNotConfigured',
      );
    }
    return key;
  }

  /** Runs a codec operation and turns what went wrong into the API's error types. */
  async function run<T extends { calledProvider: boolean }>(orgId: string, key: ActiveKey, operation: 'encrypt' | 'decrypt', fn: () => Promise<T>): Promise<T> {
    let result: T;
    try {
      result = await fn();
    } catch (error) {
      throw await failure(orgId, key, operation, error);
    }
    if (result.calledProvider) await deps.keyErrors?.success(orgId, key.keyId);
    return result;
  }

  /** The API's error for what the codec threw; a failure of the organization's key is recorded as one. */
  async function failure(orgId: string, key: ActiveKey, operation: 'encrypt' | 'decrypt', error: unknown): Promise<unknown> {
    if (error instanceof ForeignMessageError) {
      return generalError(
        400,
        error.reason === 'context'
          ? 'The message was not encrypted for this organization: its encryption context does not name this organization.'
          : 'The message cannot be decrypted by this organization: none of its data keys is under one of the organization\'s KMS keys (it was altered, or made for someone else).',
      );
    }
    if (isKeyProviderError(error)) {
      if (operation === 'decrypt' && error.kind === 'InvalidCiphertext') {
        return generalError(400, 'The message\'s data key does not decrypt under this organization\'s key and context: it was altered, or made for someone else.');
      }
      // Worded by the organization's key adapter (the AWS exception, what to change in AWS).
      const provider = await deps.keys.forReference(orgId, key.keyId).catch(() => undefined);
      return await keyFailure(orgId, key.keyId, deps.keyErrors, error, provider);
    }
    // A decrypt that failed with no key failure failed on the message (MalformedMessageError).
    if (operation === 'decrypt') {
      return generalError(
        400,
        'encryptedData is not an AWS Encryption SDK message this organization can decrypt: it is malformed or altered, uses a non-committing algorithm suite, or none of its data keys is under this organization\'s KMS key account.',
      );
    }
    return generalError(500, 'Encryption failed unexpectedly; quote the contextId when reporting it.');
  }

  async function audit(caller: Caller, action: string, details: Record<string, unknown>): Promise<void> {
    await deps.audit.record({ orgId: caller.orgId, principal: caller.principalId, action, outcome: 'success', details: { principalName: caller.principalName, ...details } });
  }

  /** A call refused because of the key (or failing on our side) is in the organization's trail too; bad input is not. */
  async function audited<T>(caller: Caller, action: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof AppError && err.status >= 424 && err.errorType) {
        await deps.audit
          .record({ orgId: caller.orgId, principal: caller.principalId, action, outcome: 'failure', details: { principalName: caller.principalName, errorType: err.errorType, status: err.status } })
          .catch(() => undefined);
      }
      throw err;
    }
  }

  return {
    /** `{ data }` → `{ encryptedData }`: base64 of an ESDK message (committing, non-signing suite; context {<ctxKey>: orgId}). */
    async encrypt(caller: Caller, body: unknown): Promise<{ encryptedData: string }> {
      const data = (body as { data?: unknown } | null)?.data;
      if (data === undefined || data === null || data === '') throw badRequest('data is empty: send { "data": "<text to encrypt>" }.', { field: 'data' }, 'NoDataSupplied');
      if (typeof data !== 'string') throw badRequest('data must be a string.', { field: 'data' }, 'GeneralError');
      if (data.length > MAX_ENCRYPT_CHARACTERS) throw tooLarge(`data has ${data.length} characters; Encrypt Data takes at most ${MAX_ENCRYPT_CHARACTERS}.`);
      if (LONE_SURROGATE.test(data)) throw badRequest('data is not well-formed Unicode (lone surrogate).', { field: 'data' }, 'GeneralError');
      const key = await audited(caller, 'encryption.encrypt', () => customerKey(caller.orgId));
      const plaintext = Buffer.from(data, 'utf8');
      try {
        const { message, keyIds } = await audited(caller, 'encryption.encrypt', () => run(caller.orgId, key, 'encrypt', () => codec.encrypt(caller.orgId, key, plaintext)));
        rememberKeys(caller.orgId, keyIds);
        await audit(caller, 'encryption.encrypt', { bytes: plaintext.length, messageBytes: message.length });
        return { encryptedData: message.toString('base64') };
      } finally {
        plaintext.fill(0);
      }
    },

    /** `{ encryptedData }` → `{ data }`; refuses a message whose encryption context is not this organization's. */
    async decrypt(caller: Caller, body: unknown): Promise<{ data: string }> {
      const encoded = (body as { encryptedData?: unknown } | null)?.encryptedData;
      if (encoded === undefined || encoded === null || encoded === '') {
        throw badRequest('encryptedData is empty: send { "encryptedData": "<base64 ESDK message>" }.', { field: 'encryptedData' }, 'NoDataSupplied');
      }
      if (typeof encoded !== 'string') throw badRequest('encryptedData must be a base64 string.', { field: 'encryptedData' }, 'GeneralError');
      if (encoded.length > MAX_ENCRYPTED_DATA_CHARACTERS) {
        throw tooLarge(`encryptedData has ${encoded.length} characters; Decrypt Data takes at most ${MAX_ENCRYPTED_DATA_CHARACTERS}.`);
      }
      if (!BASE64.test(encoded)) throw badRequest('encryptedData is not base64.', { field: 'encryptedData' }, 'GeneralError');
      const key = await audited(caller, 'encryption.decrypt', () => customerKey(caller.orgId));
      const message = Buffer.from(encoded, 'base64');
      // The org's keys: what its configuration resolved to (now or before), and what this node encrypted under.
      // Read before the codec runs: run() takes what fails inside it for a fault of the message, and a
      // database that cannot answer is not one (a 503 to retry, not a 400).
      const known = await audited(caller, 'encryption.decrypt', () => deps.keyConfigs.knownKeyArns(caller.orgId));
      const isOrgKey = (arn: string) => known.has(arn) || encryptedUnder.get(caller.orgId)?.has(arn) === true;
      const { plaintext, forOrganization } = await audited(caller, 'encryption.decrypt', () =>
        run(caller.orgId, key, 'decrypt', () => codec.decrypt(caller.orgId, key, message, isOrgKey)),
      );
      try {
        // Checked before the key was called; checked again on what the codec authenticated.
        if (!forOrganization) {
          throw generalError(400, 'The message was not encrypted for this organization: its encryption context does not name this organization.');
        }
        let data: string;
        try {
          data = new TextDecoder('utf-8', { fatal: true }).decode(plaintext);
        } catch {
          throw generalError(400, 'The message decrypts, but not to UTF-8 text; Decrypt Data returns text only.');
        }
        await audit(caller, 'encryption.decrypt', { messageBytes: message.length, bytes: plaintext.length });
        return { data };
      } finally {
        plaintext.fill(0);
      }
    },
  };
}
