import path from 'node:path';
import { z } from 'zod';

/** Environment (and CLI flags, which win) → one typed, validated configuration object. */

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();
const accountId = z.string().regex(/^\d{12}$/, 'must be a 12-digit AWS account id');
const region = z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'must be an AWS region such as us-east-1');

const envSchema = z.object({
  PORT: port.default(8080),
  HOST: z.string().min(1).default('0.0.0.0'),
  CONVAULT_DATA_DIR: z.string().min(1).default('./data'),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL (leave it unset for the embedded SQLite database)')
    .optional(),
  CONVAULT_BOOTSTRAP_TOKEN: z.string().min(16, 'must be at least 16 characters').max(512).optional(),
  // "aws": AWS KMS's own regional endpoints with the SDK's default credentials.
  CONVAULT_KMS_ENDPOINT: z.union([z.literal('aws'), z.url('must be "aws" or an http(s) URL of an AWS-compatible KMS')]).optional(),
  CONVAULT_LOCAL_KMS_PORT: port.optional(),
  CONVAULT_LOCAL_KMS_ROOT_KEY: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, 'must be 32 bytes as 64 hex characters')
    .optional(),
  CONVAULT_LOCAL_KMS_PRINCIPALS_FILE: z.string().min(1).optional(),
  CONVAULT_LOCAL_KMS_FAULTS: z.enum(['true', 'false']).default('false'),
  AWS_REGION: region.default('us-east-1'),
  CONVAULT_PLATFORM_ACCOUNT_ID: accountId.default('444455556666'),
  CONVAULT_ALLOWED_REGIONS: z
    .string()
    .optional()
    .transform((v) => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : undefined))
    .pipe(z.array(region).optional()),
  CONVAULT_ENCRYPTION_CONTEXT_KEY: z
    .string()
    .regex(/^[A-Za-z0-9:_\-./]{1,128}$/, 'must be 1-128 characters of [A-Za-z0-9:_-./]')
    .default('convault-organization-id'),
  CONVAULT_DATA_KEY_ROTATE_S: positiveInt.default(3600),
  CONVAULT_DATA_KEY_MAX_CONVERSATIONS: positiveInt.default(10_000),
  CONVAULT_KEY_CACHE_MAX_AGE_S: positiveInt.default(60),
  CONVAULT_KEY_PROBE_INTERVAL_S: positiveInt.default(300),
  CONVAULT_SQLITE_SYNCHRONOUS: z.enum(['FULL', 'NORMAL']).default('NORMAL'),
  CONVAULT_SQLITE_CHECKPOINT: z.enum(['background', 'inline']).default('background'),
  CONVAULT_AUDIT_SEAL_INTERVAL_MS: z.coerce.number().int().min(10).max(1000, 'must be at most 1000 (the seal lag target is 1 s)').default(200),
  CONVAULT_TOKEN_CACHE_MAX_AGE_MS: z.coerce.number().int().min(0).max(5000, 'must be at most 5000 (a revoked token must stop working within 5 s)').default(2000),
  CONVAULT_CONFIG_REFRESH_MS: positiveInt.default(2000),
  CONVAULT_TEST_RATE_LIMIT_PER_MIN: positiveInt.default(30),
  CONVAULT_WEBHOOK_URL: z.url().optional(),
  CONVAULT_WEBHOOK_SECRET: z.string().min(16).optional(),
  CONVAULT_WEBHOOK_MAX_ATTEMPTS: positiveInt.max(100).default(8),
  CONVAULT_BODY_LIMIT_BYTES: positiveInt.default(1_048_576),
  CONVAULT_SQLITE_BUSY_TIMEOUT_MS: positiveInt.default(5000),
  CONVAULT_AUTH_FAILURES_PER_MIN: positiveInt.default(30),
  CONVAULT_METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').max(512).optional(),
  CONVAULT_METRICS_PORT: port.optional(),
  CONVAULT_METRICS_ORG_LABEL: z.enum(['true', 'false']).default('false'),
  CONVAULT_DEMO_KEY: z.enum(['true', 'false']).default('true'),
  // LocalKeyManager proxy URLs (src/providers/xks/url-policy.ts): loopback over http for development
  // and tests; private networks over https where the operator's key managers live there.
  CONVAULT_XKS_ALLOW_HTTP_LOOPBACK: z.enum(['true', 'false']).default('false'),
  CONVAULT_XKS_ALLOW_PRIVATE_NETWORKS: z.enum(['true', 'false']).default('false'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Env = Record<string, string | undefined>;

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl?: string;
  bootstrapToken?: string;
  kms: {
    /** "aws" (AWS KMS, regional endpoints) or an AWS-compatible endpoint URL; undefined → start the embedded local KMS. */
    endpoint?: string;
    localPort: number;
    /** Which setting chose localPort: the CLI trusts an explicit one over the running server's record. */
    localPortSource: 'CONVAULT_LOCAL_KMS_PORT' | 'PORT' | 'default';
    localRootKeyHex?: string;
    localPrincipalsFile?: string;
    /** Serve the local KMS's fault-injection endpoint over HTTP (tests). */
    localFaultEndpoint: boolean;
    region: string;
    platformAccountId: string;
    allowedRegions: string[];
    encryptionContextKey: string;
  };
  dataKeys: { rotateSeconds: number; maxConversations: number; cacheMaxAgeSeconds: number };
  keyProbeIntervalSeconds: number;
  /** SQLite's synchronous setting: NORMAL (default) survives a process crash; FULL also an OS crash (docs/OPERATIONS.md). */
  sqliteSynchronous: 'FULL' | 'NORMAL';
  /** Who checkpoints SQLite's WAL: a worker thread (default) or commits themselves (docs/OPERATIONS.md). */
  sqliteCheckpoint: 'background' | 'inline';
  /** How often the audit sealer chains the events appended since its last pass. */
  auditSealIntervalMs: number;
  /** How long a verified bearer token is trusted without a database lookup (≤ 5000). */
  tokenCacheMaxAgeMs: number;
  configRefreshMs: number;
  testRateLimitPerMinute: number;
  webhook?: { url: string; secret?: string; maxAttempts: number };
  bodyLimitBytes: number;
  /** SQLite: how long a write waits for another writer before it fails with 503 (store busy). */
  sqliteBusyTimeoutMs: number;
  authFailuresPerMinute: number;
  /** /metrics: the API port answers only with this bearer token; `port` serves it on loopback without one. */
  metrics: { token?: string; port?: number; orgLabel: boolean };
  demoKey: boolean;
  /** Which proxy addresses a LocalKeyManager configuration may name (link-local and metadata never). */
  xks: { allowHttpLoopback: boolean; allowPrivateNetworks: boolean };
  logLevel: z.infer<typeof envSchema>['LOG_LEVEL'];
}

export class ConfigError extends Error {}

/** Variables whose value is a secret: an error names them and what is wrong, never the value. */
export const SECRET_VARIABLES: ReadonlySet<string> = new Set(['CONVAULT_BOOTSTRAP_TOKEN', 'CONVAULT_LOCAL_KMS_ROOT_KEY', 'CONVAULT_WEBHOOK_SECRET']);
/** URLs may carry a password (`postgres://user:pass@…`): shown without their user info. */
const URL_VARIABLES: ReadonlySet<string> = new Set(['DATABASE_URL', 'CONVAULT_WEBHOOK_URL', 'CONVAULT_KMS_ENDPOINT']);

/** What an error may show of a variable's value. */
export function printableValue(name: string, value: string | undefined): string {
  if (value === undefined) return 'unset';
  if (SECRET_VARIABLES.has(name)) return `a value of ${value.length} characters, not shown`;
  if (URL_VARIABLES.has(name)) return JSON.stringify(withoutUserInfo(value));
  return JSON.stringify(value);
}

function withoutUserInfo(value: string): string {
  // Not parsed as a URL: a value that is not one must be redacted as well.
  const redacted = value.replace(/^([^:/?#\s]*:\/\/)[^/?#]*@/, '$1[redacted]@');
  return redacted.replace(/^[^:]*:\/\/\[redacted\]@/, '').includes('@') ? '[not shown: it holds an @]' : redacted;
}

/** Reads the environment; `overrides` are CLI flags in the same variable names. Throws ConfigError with a one-line message naming the variable. */
export function loadConfig(env: Env = process.env, overrides: Env = {}): Config {
  const merged: Env = {};
  for (const key of Object.keys(envSchema.shape)) {
    const value = overrides[key] ?? env[key];
    // Empty strings mean "unset", as shells and .env files commonly produce them.
    if (value !== undefined && value !== '') merged[key] = value;
  }
  const parsed = envSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = String(issue.path[0] ?? 'environment');
    throw new ConfigError(`Invalid ${name}: ${issue.message} (got ${printableValue(name, merged[name])})`);
  }
  const e = parsed.data;
  const localPort = e.CONVAULT_LOCAL_KMS_PORT ?? (e.PORT === 0 ? 0 : e.PORT + 1);
  if (localPort > 65535) throw new ConfigError('Invalid CONVAULT_LOCAL_KMS_PORT: PORT+1 exceeds 65535; set it explicitly');
  return {
    port: e.PORT,
    host: e.HOST,
    dataDir: path.resolve(e.CONVAULT_DATA_DIR),
    databaseUrl: e.DATABASE_URL,
    bootstrapToken: e.CONVAULT_BOOTSTRAP_TOKEN,
    kms: {
      endpoint: e.CONVAULT_KMS_ENDPOINT,
      localPort,
      localPortSource: e.CONVAULT_LOCAL_KMS_PORT !== undefined ? 'CONVAULT_LOCAL_KMS_PORT' : merged.PORT !== undefined ? 'PORT' : 'default',
      localRootKeyHex: e.CONVAULT_LOCAL_KMS_ROOT_KEY,
      localPrincipalsFile: e.CONVAULT_LOCAL_KMS_PRINCIPALS_FILE,
      localFaultEndpoint: e.CONVAULT_LOCAL_KMS_FAULTS === 'true',
      region: e.AWS_REGION,
      platformAccountId: e.CONVAULT_PLATFORM_ACCOUNT_ID,
      allowedRegions: e.CONVAULT_ALLOWED_REGIONS ?? [e.AWS_REGION],
      encryptionContextKey: e.CONVAULT_ENCRYPTION_CONTEXT_KEY,
    },
    dataKeys: {
      rotateSeconds: e.CONVAULT_DATA_KEY_ROTATE_S,
      maxConversations: e.CONVAULT_DATA_KEY_MAX_CONVERSATIONS,
      cacheMaxAgeSeconds: e.CONVAULT_KEY_CACHE_MAX_AGE_S,
    },
    keyProbeIntervalSeconds: e.CONVAULT_KEY_PROBE_INTERVAL_S,
    tokenCacheMaxAgeMs: e.CONVAULT_TOKEN_CACHE_MAX_AGE_MS,
    auditSealIntervalMs: e.CONVAULT_AUDIT_SEAL_INTERVAL_MS,
    sqliteSynchronous: e.CONVAULT_SQLITE_SYNCHRONOUS,
    sqliteCheckpoint: e.CONVAULT_SQLITE_CHECKPOINT,
    configRefreshMs: e.CONVAULT_CONFIG_REFRESH_MS,
    testRateLimitPerMinute: e.CONVAULT_TEST_RATE_LIMIT_PER_MIN,
    webhook: e.CONVAULT_WEBHOOK_URL ? { url: e.CONVAULT_WEBHOOK_URL, secret: e.CONVAULT_WEBHOOK_SECRET, maxAttempts: e.CONVAULT_WEBHOOK_MAX_ATTEMPTS } : undefined,
    bodyLimitBytes: e.CONVAULT_BODY_LIMIT_BYTES,
    sqliteBusyTimeoutMs: e.CONVAULT_SQLITE_BUSY_TIMEOUT_MS,
    authFailuresPerMinute: e.CONVAULT_AUTH_FAILURES_PER_MIN,
    metrics: { token: e.CONVAULT_METRICS_TOKEN, port: e.CONVAULT_METRICS_PORT, orgLabel: e.CONVAULT_METRICS_ORG_LABEL === 'true' },
    demoKey: e.CONVAULT_DEMO_KEY === 'true',
    xks: { allowHttpLoopback: e.CONVAULT_XKS_ALLOW_HTTP_LOOPBACK === 'true', allowPrivateNetworks: e.CONVAULT_XKS_ALLOW_PRIVATE_NETWORKS === 'true' },
    logLevel: e.LOG_LEVEL,
  };
}
