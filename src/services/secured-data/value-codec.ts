import { Buffer } from 'node:buffer';
import { openValue, sealValue } from '../../crypto/index.js';

/**
 * One attribute value ↔ its value envelope (docs/FORMAT.md): the string is UTF-8 encoded, sealed
 * under the conversation key with AAD (org, conversation, name), and the intermediate plaintext
 * buffer is zeroed. Throws EnvelopeError when an envelope does not open.
 */
export function sealAttribute(conversationKey: Buffer, orgId: string, conversationId: string, name: string, value: string): Buffer {
  const plaintext = Buffer.from(value, 'utf8');
  try {
    return sealValue({ conversationKey, orgId, conversationId, name, plaintext });
  } finally {
    plaintext.fill(0);
  }
}

export function openAttribute(conversationKey: Buffer, orgId: string, conversationId: string, name: string, envelope: Buffer): string {
  const plaintext = openValue({ conversationKey, orgId, conversationId, name, envelope });
  try {
    return plaintext.toString('utf8');
  } finally {
    plaintext.fill(0);
  }
}
