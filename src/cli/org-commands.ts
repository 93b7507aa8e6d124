import type { Command } from 'commander';
import { loadConfig } from '../config.js';
import type { TokenService } from '../services/auth/token-service.js';
import type { createOrgService } from '../services/orgs/org-service.js';
import { openConvaultDatabase } from '../server/runtime.js';
import { createCoreServices } from '../server/services.js';
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

  const tokens = program.command('tokens').description("Manage API tokens (the operator's access: any organization)");
  tokens
    .command('create')
    .description('Create a principal with permissions and print its API token (shown once)')
    .requiredOption('--org <id>', 'organization id')
    .requiredOption('--permissions <list>', 'comma-separated permissions, e.g. conversation:encryptionKey:view')
    .option('--name <name>', 'principal name', 'api-client')
    .option('--expires-at <instant>', 'RFC 3339 instant after which the token no longer works, e.g. 2027-01-01T00:00:00Z')
    .option('--json', 'print JSON')
    .action((opts: { org: string; permissions: string; name: string; expiresAt?: string; json?: boolean }) =>
      withServices(async ({ tokenService }) => {
        const created = await tokenService.create(CLI_ACTOR('tokens-create'), {
          orgId: opts.org,
          name: opts.name,
          permissions: opts.permissions.split(',').map((p) => p.trim()).filter(Boolean),
          expiresAt: opts.expiresAt,
        });
        printResult(created, opts.json, () => `Token ${created.id} for ${opts.name} in ${created.orgId} (shown once):\n${created.token}`);
      }),
    );
  tokens
    .command('list')
    .description("List an organization's tokens (never their secrets)")
    .requiredOption('--org <id>', 'organization id')
    .option('--json', 'print JSON')
    .action((opts: { org: string; json?: boolean }) =>
      withServices(async ({ orgService, tokenService }) => {
        await orgService.getOrganization(opts.org);
        const list = await tokenService.list(opts.org);
        printResult(list, opts.json, () => list.map((t) => `${t.id}  ${t.prefix}…  ${t.state.padEnd(7)}  ${t.name}  ${t.permissions.join(',')}`).join('\n') || '(none)');
      }),
    );
  tokens
    .command('revoke')
    .description('Revoke a token: it stops working at once, on every node')
    .requiredOption('--org <id>', 'organization id')
    .requiredOption('--id <tokenId>', 'token id (tokens list)')
    .option('--json', 'print JSON')
    .action((opts: { org: string; id: string; json?: boolean }) =>
      withServices(async ({ tokenService }) => {
        const revoked = await tokenService.revoke(CLI_ACTOR('tokens-revoke'), opts.org, opts.id);
        printResult(revoked, opts.json, () => `Token ${revoked.id} (${revoked.prefix}…) is revoked`);
      }),
    );
  tokens
    .command('rotate')
    .description('Replace a token by a new secret for the same principal (printed once); the old one is revoked')
    .requiredOption('--org <id>', 'organization id')
    .requiredOption('--id <tokenId>', 'token id (tokens list)')
    .option('--expires-at <instant>', 'RFC 3339 expiry of the new token (default: that of the old one)')
    .option('--json', 'print JSON')
    .action((opts: { org: string; id: string; expiresAt?: string; json?: boolean }) =>
      withServices(async ({ tokenService }) => {
        const rotated = await tokenService.rotate(CLI_ACTOR('tokens-rotate'), opts.org, opts.id, { expiresAt: opts.expiresAt });
        printResult(rotated, opts.json, () => `Token ${rotated.id} replaces ${opts.id} (shown once):\n${rotated.token}`);
      }),
    );
}

const CLI_ACTOR = (command: string) => ({ principal: `cli:${command}` });

async function withServices(
  fn: (s: { orgService: ReturnType<typeof createOrgService>; tokenService: TokenService }) => Promise<void>,
): Promise<void> {
  return runCommand(async () => {
    const config = loadConfig();
    const database = await openConvaultDatabase(config);
    try {
      // The same services `serve` wires (the composition root's core: no key provider needed here).
      const core = createCoreServices(config, { database });
      await fn({ orgService: core.orgs, tokenService: core.tokens });
    } finally {
      await database.close();
    }
  });
}
