import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { AuditService } from '../services/audit/audit-service.js';
import type { AuthService } from '../services/auth/auth-service.js';
import type { TokenService } from '../services/auth/token-service.js';
import type { EncryptionService } from '../services/encryption/encryption-service.js';
import type { KeyConfigService } from '../services/keyconfig/keyconfig-service.js';
import type { KeyHealthService } from '../services/key-health/key-health-service.js';
import type { WebhookDeliveryService } from '../services/key-health/webhook-deliveries.js';
import type { LifecycleService } from '../services/lifecycle/lifecycle-service.js';
import type { RewrapService } from '../services/lifecycle/rewrap-service.js';
import type { OrgService } from '../services/orgs/org-service.js';
import type { SecuredDataService } from '../services/secured-data/secured-data-service.js';
import { createRateLimiter, type FailureLimiter } from '../services/rate-limiter.js';
import type { ConvaultMetrics } from '../metrics/registry.js';
import { registerBearerAuth } from './plugins/auth.js';
import { answerClientError, registerErrorHandling, sendFrameworkError } from './plugins/errors.js';
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
import { tokenRoutes } from './routes/tokens.js';
import { webUiDistDir, webUiRoutes } from './routes/web-ui.js';

export interface AppServices {
  auth: AuthService;
  tokens: TokenService;
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
  /** Failed authentications per client address per minute before 429. */
  authFailuresPerMinute: number;
  /** The limiter of failed authentications (shared by the nodes on PostgreSQL); default: this node's memory. */
  authFailures?: FailureLimiter;
  logger: FastifyServerOptions['logger'];
  version: string;
  /** Set while the runtime shuts down: responses then close their connection. */
  draining?: { active: boolean };
  /** Prometheus metrics and the token /metrics on this port requires (unset token → 404). */
  metrics?: { registry: ConvaultMetrics; token?: string };
}

export async function buildApp({ services, bodyLimitBytes, authFailuresPerMinute, authFailures, logger, version, draining, metrics }: BuildAppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger,
    bodyLimit: bodyLimitBytes,
    genReqId: () => randomUUID(),
    return503OnClosing: true,
    ajv: { customOptions: { allErrors: false, coerceTypes: false, removeAdditional: false } },
    // Errors raised before routing (a URL that does not decode, …) get the one error body too.
    frameworkErrors: (error, request, reply) => sendFrameworkError(error, request, reply),
    // Malformed HTTP, oversized headers (431) or URLs: answered on the socket, still in the one shape.
    clientErrorHandler: answerClientError,
  });
  app.addHook('onSend', async (request, reply) => {
    void reply.header('x-request-id', request.id);
    // A keep-alive connection that finishes its last request during shutdown would otherwise hold the
    // close open until its idle timeout.
    if (draining?.active) void reply.header('connection', 'close');
    const path = request.url.split('?')[0] ?? '';
    // API answers may carry plaintext or token secrets: no cache on the way may keep them.
    if ((request.routeOptions.url ?? path).startsWith('/api/')) void reply.header('cache-control', 'no-store');
    // The API docs page is never framed by another site (clickjacking), and loads no plugins.
    if (path === '/docs' || path.startsWith('/docs/')) {
      void reply.header('x-frame-options', 'DENY');
      void reply.header('content-security-policy', "frame-ancestors 'none'; object-src 'none'; base-uri 'self'; form-action 'self'");
    }
  });
  registerErrorHandling(app);
  if (metrics) registerHttpMetrics(app, metrics.registry);
  registerJsonBodyParser(app);
  await registerOpenApi(app, version);
  registerBearerAuth(app, services.auth, authFailures ?? createRateLimiter({ limit: authFailuresPerMinute, windowMs: 60_000 }));
  await app.register(healthRoutes, { pingDatabase: services.pingDatabase });
  if (metrics) await app.register(metricsRoutes, { metrics: metrics.registry, token: metrics.token });
  await app.register(organizationRoutes, { auth: services.auth, orgs: services.orgs });
  await app.register(tokenRoutes, { auth: services.auth, tokens: services.tokens });
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
