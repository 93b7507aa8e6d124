import type { KeyProviderError } from './key-provider.js';

/**
 * Encrypt Data / Decrypt Data messages as the encryption service needs them, whatever format and
 * key provider make them (today: AWS Encryption SDK messages under an AWS KMS key, see
 * src/providers/aws-kms/esdk/esdk-message-codec.ts). The service keeps permissions, limits, audit
 * and the API's errors; a codec only makes and opens messages, and throws one of three things:
 * ForeignMessageError, a KeyProviderError (the organization's key failed, with its kind), or
 * MalformedMessageError (decrypt: the message itself is unusable). Anything else is a fault of the
 * platform.
 */
export interface EncryptDataCodec {
  encrypt(orgId: string, key: MessageKey, plaintext: Buffer): Promise<EncryptedMessage>;
  /** `isOrgKey` names the keys the organization's messages may be under: no other key is ever called. */
  decrypt(orgId: string, key: MessageKey, message: Buffer, isOrgKey: (keyId: string) => boolean): Promise<DecryptedMessage>;
}

/** The organization's key as a codec needs it: the configured reference and the configuration version. */
export interface MessageKey {
  keyId: string;
  version: number;
}

export interface EncryptedMessage {
  message: Buffer;
  /** The keys the message's data key is wrapped under (an alias resolves to its key). */
  keyIds: string[];
  /** Whether the key provider was called (a cached data key needs no call). */
  calledProvider: boolean;
}

export interface DecryptedMessage {
  /** The caller owns it and zeroes it. */
  plaintext: Buffer;
  /** Whether the authenticated message names exactly this organization (checked before the key was called, and again here). */
  forOrganization: boolean;
  calledProvider: boolean;
}

/**
 * Thrown before any key call when a message is not this organization's to decrypt: its context does
 * not name exactly the organization, or none of its data keys is under one of the organization's keys.
 */
export class ForeignMessageError extends Error {
  constructor(readonly reason: 'context' | 'keys') {
    super('the message was not encrypted for this organization');
    this.name = 'ForeignMessageError';
  }
}

/** Decrypt: the message is not one this organization can open, and no key call failed. */
export class MalformedMessageError extends Error {
  constructor(options?: { cause?: unknown }) {
    super('the message is malformed or altered', options);
    this.name = 'MalformedMessageError';
  }
}

export type EncryptDataFailure = ForeignMessageError | KeyProviderError | MalformedMessageError;
