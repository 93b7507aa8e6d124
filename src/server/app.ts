import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { AuditService } from '../services/audit/audit-service.js';
import type { AuthService } from '../services/auth/auth-service.js';
import type { KeyConfigService } from '../services/keyconfig/keyconfig-service.js';
import type { OrgService } from '../services/orgs/org-service.js';
import { registerBearerAuth } from './plugins/auth.js';
import { registerErrorHandling } from './plugins/errors.js';
import { registerJsonBodyParser } from './plugins/json-body.js';
import { registerOpenApi } from './plugins/openapi.js';
import { auditRoutes } from './routes/audits.js';
import { healthRoutes } from './routes/health.js';
import { keyConfigurationRoutes } from './routes/keyconfigurations.js';
import { organizationRoutes } from './routes/organizations.js';

export interface AppServices {
  auth: AuthService;
  orgs: OrgService;
  audit: AuditService;
  keyConfigs: KeyConfigService;
  pingDatabase(): Promise<void>;
}

export interface BuildAppOptions {
  services: AppServices;
  bodyLimitBytes: number;
  logger: FastifyServerOptions['logger'];
  version: string;
}

export async function buildApp({ services, bodyLimitBytes, logger, version }: BuildAppOptions): Promise<FastifyInstance> {
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
  registerBearerAuth(app, services.auth);
  await app.register(healthRoutes, { pingDatabase: services.pingDatabase });
  await app.register(organizationRoutes, { auth: services.auth, orgs: services.orgs });
  await app.register(keyConfigurationRoutes, { auth: services.auth, keyConfigs: services.keyConfigs });
  await app.register(auditRoutes, { auth: services.auth, audit: services.audit });
  return app;
}
