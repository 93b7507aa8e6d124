export * from './protocol.js';
export { ciphertextDataIntegrityValue } from './cdiv.js';
export { decodeBase64Strict } from './base64.js';
export { parseXksPath, xksPath } from './paths.js';
export type { XksOperation, XksRoute } from './paths.js';
