import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { AuditService } from '../services/audit/audit-service.js';
import type { AuthService } from '../services/auth/auth-service.js';
import type { TokenService } from '../services/auth/token-service.js';
import type { EncryptionService } from '../services/encryption/encryption-service.js';
import type { KeyConfigService } from '../services/keyconfig/keyconfig-service.js';
import type { KeyHealthService } from '../services/key-health/key-health-service.js';
import type { LifecycleService } from '../services/lifecycle/lifecycle-service.js';
import type { RewrapService } from '../services/lifecycle/rewrap-service.js';
import type { OrgService } from '../services/orgs/org-service.js';
import type { SecuredDataService } from '../services/secured-data/secured-data-service.js';
import { createRateLimiter } from '../services/rate-limiter.js';
import { registerBearerAuth } from './plugins/auth.js';
import { registerErrorHandling } from './plugins/errors.js';
import { registerJsonBodyParser } from './plugins/json-body.js';
import { registerOpenApi } from './plugins/openapi.js';
import { auditRoutes } from './routes/audits.js';
import { encryptionRoutes } from './routes/encryption.js';
import { healthRoutes } from './routes/health.js';
import { keyConfigurationRoutes } from './routes/keyconfigurations.js';
import { keyHealthRoutes } from './routes/key-health.js';
import { lifecycleRoutes } from './routes/lifecycle.js';
import { organizationRoutes } from './routes/organizations.js';
import { securedDataRoutes } from './routes/secured-data.js';
import { tokenRoutes } from './routes/tokens.js';
import { webUiDistDir, webUiRoutes } from './routes/web-ui.js';

export interface AppServices {
  auth: AuthService;
  tokens: TokenService;
  orgs: OrgService;
  audit: AuditService;
  keyConfigs: KeyConfigService;
  keyHealth: KeyHealthService;
  lifecycle: LifecycleService;
  rewrap: RewrapService;
  securedData: SecuredDataService;
  encryption: EncryptionService;
  pingDatabase(): Promise<void>;
}

export interface BuildAppOptions {
  services: AppServices;
  bodyLimitBytes: number;
  /** Failed authentications per client address per minute before 429. */
  authFailuresPerMinute: number;
  logger: FastifyServerOptions['logger'];
  version: string;
}

export async function buildApp({ services, bodyLimitBytes, authFailuresPerMinute, logger, version }: BuildAppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger,
    bodyLimit: bodyLimitBytes,
    genReqId: () => randomUUID(),
    return503OnClosing: true,
    ajv: { customOptions: { allErrors: false, coerceTypes: false, removeAdditional: false } },
  });
  app.addHook('onSend', async (request, reply) => {
    void reply.header('x-request-id', request.id);
  });
  registerErrorHandling(app);
  registerJsonBodyParser(app);
  await registerOpenApi(app, version);
  registerBearerAuth(app, services.auth, createRateLimiter({ limit: authFailuresPerMinute, windowMs: 60_000 }));
  await app.register(healthRoutes, { pingDatabase: services.pingDatabase });
  await app.register(organizationRoutes, { auth: services.auth, orgs: services.orgs });
  await app.register(tokenRoutes, { auth: services.auth, tokens: services.tokens });
  await app.register(keyConfigurationRoutes, { auth: services.auth, keyConfigs: services.keyConfigs });
  await app.register(keyHealthRoutes, { auth: services.auth, keyHealth: services.keyHealth });
  await app.register(auditRoutes, { auth: services.auth, audit: services.audit });
  await app.register(lifecycleRoutes, { auth: services.auth, lifecycle: services.lifecycle, rewrap: services.rewrap });
  await app.register(securedDataRoutes, { auth: services.auth, securedData: services.securedData });
  await app.register(encryptionRoutes, { auth: services.auth, encryption: services.encryption });
  // The admin UI at / (web/dist); without a build, / says how to build it and the API still serves.
  await app.register(webUiRoutes, { distDir: webUiDistDir() });
  return app;
}
