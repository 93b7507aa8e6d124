export { createXksClient } from './client.js';
export type { XksCiphertext, XksClient, XksClientOptions, XksHealth, XksKeyMetadata } from './client.js';
export { classifyTransportError, classifyXksErrorResponse, isXksError, KIND_OF_ERROR_NAME, XksError } from './errors.js';
export type { XksFailureKind } from './errors.js';
