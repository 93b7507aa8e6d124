/**
 * The local KMS: an HTTP server speaking the AWS KMS JSON 1.1 protocol with AWS's semantics, so the
 * official SDKs work against it unchanged. The rest of convault reaches it only over HTTP through
 * `@aws-sdk/client-kms`; only the composition root (and `convault kms serve`) imports this module.
 * See docs/LOCAL_KMS.md.
 */
export { localKmsMigrations } from './migrations.js';
export { resolveLocalKmsRootKey, RootKeyError, ROOT_KEY_FILE } from './root-key.js';
export { startLocalKms, type LocalKms, type LocalKmsLogger, type LocalKmsOptions } from './server.js';
export { FaultController, FaultGate, type FaultPatch, type FaultSettings, type OutageMode } from './fault-controller.js';
export { CREDENTIALS_PATH, FAULTS_PATH } from './admin-endpoint.js';
export { ADMIN_SECRET_FILE, readLocalKmsAdminSecret, resolveLocalKmsAdminSecret } from './admin-secret.js';
export type { AccessKey } from './credential-store.js';
export { SUPPORTED_OPERATIONS } from './dispatch.js';
