import { once } from 'node:events';
import type { Command } from 'commander';
import { loadConfig } from '../config.js';
import { openConvaultDatabase } from '../server/runtime.js';
import { createCoreServices } from '../server/services.js';
import { createAuditDal } from '../services/audit/audit-dal.js';
import { createAuditSealer } from '../services/audit/audit-sealer.js';
import type { AuditService } from '../services/audit/audit-service.js';
import { canonicalJson } from '../services/audit/canonical-json.js';
import type { AuditVerification } from '../services/audit/types.js';
import { AppError } from '../services/errors.js';
import { createOrgDal } from '../services/orgs/org-dal.js';
import { runCommand } from './run-command.js';

/** `audit export` and `audit verify`: read the same database as `serve`, also while it runs. */
export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description("Export, verify and seal organizations' audit trails");
  registerSeal(audit);
  audit
    .command('export')
    .description('Print every audit event of the organization as JSON lines, oldest first (canonical JSON, so hashes can be recomputed)')
    .requiredOption('--org <id>', 'organization id')
    .action((opts: { org: string }) =>
      withAudit(opts.org, async (service) => {
        await writeLines(mapAsync(service.exportEvents(opts.org), canonicalJson));
      }),
    );
  audit
    .command('verify')
    .description('Recompute the hash chain; exit 0 when intact, 1 naming the first broken event')
    .requiredOption('--org <id>', 'organization id')
    .option('--json', 'print the result as JSON')
    .action((opts: { org: string; json?: boolean }) =>
      withAudit(opts.org, async (service) => {
        const result = await service.verify(opts.org);
        if (opts.json) process.stdout.write(JSON.stringify(result) + '\n');
        if (result.ok) {
          if (!opts.json) process.stdout.write(`Audit trail of organization ${opts.org} is intact: ${result.count} events verified.${describeUnsealed(result)}\n`);
        } else {
          if (!opts.json) process.stderr.write(`convault: ${describeBreak(opts.org, result)}\n`);
          process.exitCode = 1;
        }
      }),
    );
}

function describeUnsealed(result: AuditVerification): string {
  const u = result.unsealed;
  if (!u || u.count === 0) return '';
  return ` ${u.count} newer event${u.count === 1 ? ' is' : 's are'} not sealed yet (the oldest appended ${(u.oldestAgeMs! / 1000).toFixed(1)} s ago).`;
}

function registerSeal(audit: Command): void {
  audit
    .command('seal')
    .description('Chain every audit event not sealed yet (what a running server does every CONVAULT_AUDIT_SEAL_INTERVAL_MS); waits for the sealer lease if a server holds it')
    .action(() =>
      runCommand(async () => {
        const database = await openConvaultDatabase(loadConfig());
        const sealer = createAuditSealer({ db: database.db, dialect: database.dialect, nodeId: `cli:${process.pid}` });
        try {
          let sealed = 0;
          // A server holding the lease seals them itself; wait for what is there now to be sealed, by it or by us.
          for (let i = 0; i < 100; i++) {
            sealed += await sealer.sealPending();
            if ((await createAuditDal(database.db).unsealedEvents(1)).length === 0) break;
            await new Promise((r) => setTimeout(r, 100));
          }
          process.stdout.write(`Sealed ${sealed} audit events.\n`);
        } finally {
          await sealer.stop();
          await database.close();
        }
      }),
    );
}

export function describeBreak(orgId: string, result: Extract<AuditVerification, { ok: false }>): string {
  const { id, seq } = result.brokenAt;
  const event = id === null ? `seq ${seq} (missing)` : `event ${id} (seq ${seq})`;
  return `audit trail of organization ${orgId} is broken at ${event}: ${result.reason}; the ${result.count} events before it verify.${describeUnsealed(result)}`;
}

async function withAudit(orgId: string, fn: (service: AuditService) => Promise<void>): Promise<void> {
  return runCommand(async () => {
    const config = loadConfig();
    const database = await openConvaultDatabase(config);
    try {
      // A typo in --org would otherwise "verify" an empty trail. An organization that is gone but
      // left a trail behind can still be exported and verified.
      const known = (await createOrgDal(database.db).findOrganization(orgId)) ?? (await createAuditDal(database.db).findHead(orgId));
      if (!known) throw new AppError(404, 'not.found', `Organization ${orgId} was not found and has no audit trail; list organizations with \`convault orgs list\`.`);
      await fn(createCoreServices(config, { database }).audit);
    } finally {
      await database.close();
    }
  });
}

/** JSON lines to stdout, waiting whenever its buffer is full; stops quietly when the reader goes away (`| head`). */
async function writeLines(lines: AsyncIterable<string>): Promise<void> {
  let closed = false;
  const onError = () => void (closed = true);
  process.stdout.on('error', onError);
  try {
    for await (const line of lines) {
      if (closed) return;
      if (!process.stdout.write(line + '\n')) await once(process.stdout, 'drain').catch(onError);
    }
  } finally {
    process.stdout.off('error', onError);
  }
}

async function* mapAsync<T, U>(items: AsyncIterable<T>, fn: (item: T) => U): AsyncGenerator<U> {
  for await (const item of items) yield fn(item);
}
