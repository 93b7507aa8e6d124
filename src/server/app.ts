import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { AuditService } from '../services/audit/audit-service.js';
import type { AuthService } from '../services/auth/auth-service.js';
import type { EncryptionService } from '../services/encryption/encryption-service.js';
import type { KeyConfigService } from '../services/keyconfig/keyconfig-service.js';
import type { KeyHealthService } from '../services/key-health/key-health-service.js';
import type { WebhookDeliveryService } from '../services/key-health/webhook-deliveries.js';
import type { LifecycleService } from '../services/lifecycle/lifecycle-service.js';
import type { RewrapService } from '../services/lifecycle/rewrap-service.js';
import type { OrgService } from '../services/orgs/org-service.js';
import type { SecuredDataService } from '../services/secured-data/secured-data-service.js';
import type { ConvaultMetrics } from '../metrics/registry.js';
import { registerBearerAuth } from './plugins/auth.js';
import { frameworkErrorHandler, registerErrorHandling } from './plugins/errors.js';
import { registerHttpMetrics } from './plugins/http-metrics.js';
import { registerJsonBodyParser } from './plugins/json-body.js';
import { registerOpenApi } from './plugins/openapi.js';
import { auditRoutes } from './routes/audits.js';
import { encryptionRoutes } from './routes/encryption.js';
import { healthRoutes } from './routes/health.js';
import { keyConfigurationRoutes } from './routes/keyconfigurations.js';
import { keyHealthRoutes } from './routes/key-health.js';
import { lifecycleRoutes } from './routes/lifecycle.js';
import { metricsRoutes } from './routes/metrics.js';
import { organizationRoutes } from './routes/organizations.js';
import { securedDataRoutes } from './routes/secured-data.js';
import { webUiDistDir, webUiRoutes } from './routes/web-ui.js';

export interface AppServices {
  auth: AuthService;
  orgs: OrgService;
  audit: AuditService;
  keyConfigs: KeyConfigService;
  keyHealth: KeyHealthService;
  webhookDeliveries: WebhookDeliveryService;
  lifecycle: LifecycleService;
  rewrap: RewrapService;
  securedData: SecuredDataService;
  encryption: EncryptionService;
  pingDatabase(): Promise<void>;
}

export interface BuildAppOptions {
  services: AppServices;
  bodyLimitBytes: number;
  logger: FastifyServerOptions['logger'];
  version: string;
  /** Prometheus metrics and the token /metrics on this port requires (unset token → 404). */
  metrics?: { registry: ConvaultMetrics; token?: string };
}

export async function buildApp({ services, bodyLimitBytes, logger, version, metrics }: BuildAppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger,
    bodyLimit: bodyLimitBytes,
    genReqId: () => randomUUID(),
    return503OnClosing: true,
    frameworkErrors: frameworkErrorHandler,
    ajv: { customOptions: { allErrors: false, coerceTypes: false, removeAdditional: false } },
  });
  app.addHook('onSend', async (request, reply) => {
    void reply.header('x-request-id', request.id);
  });
  registerErrorHandling(app);
  if (metrics) registerHttpMetrics(app, metrics.registry);
  registerJsonBodyParser(app);
  await registerOpenApi(app, version);
  registerBearerAuth(app, services.auth);
  await app.register(healthRoutes, { pingDatabase: services.pingDatabase });
  if (metrics) await app.register(metricsRoutes, { metrics: metrics.registry, token: metrics.token });
  await app.register(organizationRoutes, { auth: services.auth, orgs: services.orgs });
  await app.register(keyConfigurationRoutes, { auth: services.auth, keyConfigs: services.keyConfigs });
  await app.register(keyHealthRoutes, { auth: services.auth, keyHealth: services.keyHealth, webhookDeliveries: services.webhookDeliveries });
  await app.register(auditRoutes, { auth: services.auth, audit: services.audit });
  await app.register(lifecycleRoutes, { auth: services.auth, lifecycle: services.lifecycle, rewrap: services.rewrap });
  await app.register(securedDataRoutes, { auth: services.auth, securedData: services.securedData });
  await app.register(encryptionRoutes, { auth: services.auth, encryption: services.encryption });
  // The admin UI at / (web/dist); without a build, / says how to build it and the API still serves.
  await app.register(webUiRoutes, { distDir: webUiDistDir() });
  return app;
}
