import type { Command } from 'commander';
import { loadConfig } from '../config.js';
import { createAuditService } from '../services/audit/audit-service.js';
import { createAuthService } from '../services/auth/auth-service.js';
import { createTokenDal } from '../services/auth/token-dal.js';
import { createOrgDal } from '../services/orgs/org-dal.js';
import { createOrgService } from '../services/orgs/org-service.js';
import { openConvaultDatabase } from '../server/runtime.js';
import { printResult, runCommand } from './run-command.js';

/** `orgs` and `tokens`: work on the same database as `serve`, also while it runs (SQLite WAL, or PostgreSQL). */
export function registerOrgCommands(program: Command): void {
  const orgs = program.command('orgs').description('Manage organizations (tenants)');
  orgs
    .command('create')
    .description('Create an organization')
    .requiredOption('--name <name>', 'display name')
    .option('--json', 'print JSON')
    .action((opts: { name: string; json?: boolean }) =>
      withServices(async ({ orgService }) => {
        const org = await orgService.createOrganization(opts.name);
        printResult(org, opts.json, () => `Created organization ${org.id} (${org.name})`);
      }),
    );
  orgs
    .command('list')
    .description('List organizations')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) =>
      withServices(async ({ orgService }) => {
        const list = await orgService.listOrganizations();
        printResult(list, opts.json, () => list.map((o) => `${o.id}  ${o.name}`).join('\n') || '(none)');
      }),
    );

  const tokens = program.command('tokens').description('Manage API tokens');
  tokens
    .command('create')
    .description('Create a principal with permissions and print its API token (shown once)')
    .requiredOption('--org <id>', 'organization id')
    .requiredOption('--permissions <list>', 'comma-separated permissions, e.g. conversation:encryptionKey:view')
    .option('--name <name>', 'principal name', 'api-client')
    .option('--json', 'print JSON')
    .action((opts: { org: string; permissions: string; name: string; json?: boolean }) =>
      withServices(async ({ authService }) => {
        const created = await authService.createPrincipalWithToken({
          orgId: opts.org,
          name: opts.name,
          permissions: opts.permissions.split(',').map((p) => p.trim()).filter(Boolean),
          createdBy: 'cli:tokens-create',
        });
        printResult(created, opts.json, () => `Token for ${opts.name} in ${created.orgId} (shown once):\n${created.token}`);
      }),
    );
}

async function withServices(
  fn: (s: { orgService: ReturnType<typeof createOrgService>; authService: ReturnType<typeof createAuthService> }) => Promise<void>,
): Promise<void> {
  return runCommand(async () => {
    const database = await openConvaultDatabase(loadConfig());
    try {
      const orgDal = createOrgDal(database.db);
      await fn({
        orgService: createOrgService({ orgDal }),
        authService: createAuthService({ tokenDal: createTokenDal(database.db), orgDal, audit: createAuditService({ db: database.db }) }),
      });
    } finally {
      await database.close();
    }
  });
}
