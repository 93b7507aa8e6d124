import type { Command } from 'commander';
import { loadConfig } from '../config.js';
import { kmsAddressForCli } from '../kms/local-kms-address.js';
import { ensurePlatformKey } from '../kms/platform-key.js';
import { platformKmsClients } from '../server/kms-setup.js';
import { openConvaultDatabase } from '../server/runtime.js';
import { createServices } from '../server/services.js';
import { notFound } from '../services/errors.js';
import type { JobModel } from '../services/lifecycle/job-model.js';
import { createOrgDal } from '../services/orgs/org-dal.js';
import { credentialsForAccount } from './local-kms-credentials.js';
import { runCommand } from './run-command.js';

/**
 * `convault rewrap --org ID [--wait]`: starts a rewrap job on the same database as `serve`. With
 * --wait it runs the job here (against the server's KMS) and shows progress; without, a running
 * server picks the job up within seconds.
 */
export function registerRewrapCommand(program: Command): void {
  program
    .command('rewrap')
    .description("Rewrap every org data key of an organization to its current key (values are never rewritten)")
    .requiredOption('--org <id>', 'organization id')
    .option('--wait', 'run the job here and show progress until it ends')
    .option('--json', 'print the final job as JSON')
    .action((opts: { org: string; wait?: boolean; json?: boolean }) =>
      runCommand(async () => {
        const config = loadConfig();
        const database = await openConvaultDatabase(config);
        // On the embedded local KMS of a server on this data dir, the platform's issued key (operator
        // access); on a configured endpoint, the SDK's default chain, as the server itself does.
        const endpoint = kmsAddressForCli(config).endpoint;
        const platformKey = config.kms.endpoint
          ? undefined
          : () => credentialsForAccount({ account: config.kms.platformAccountId, dataDir: config.dataDir, endpoint });
        const kms = platformKmsClients(config, endpoint, platformKey);
        try {
          const db = database.db;
          if (!(await createOrgDal(db).findOrganization(opts.org))) throw notFound(`Organization ${opts.org}`);
          const platformKeyArn = await ensurePlatformKey(kms.clientForRegion(config.kms.region), { create: false });
          // The services as `serve` wires them (the composition root); this process starts none of
          // their background loops: it runs the one job asked for.
          const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
          const { services } = createServices(config, { database, kms: { ...kms, platformKeyArn }, logger: quiet });
          const rewrap = services.rewrap;
          const caller = { orgId: opts.org, principalId: 'cli:rewrap', principalName: 'convault rewrap', permissions: new Set<never>() };
          const started = await rewrap.start(caller);
          if (!opts.wait) {
            process.stdout.write(opts.json ? JSON.stringify(started) + '\n' : `Rewrap job ${started.id} is ${started.state}; a running convault server carries it out (GET /api/v2/jobs/${started.id}).\n`);
            await rewrap.stop();
            return;
          }
          const progress = showProgress(() => rewrap.get(caller, started.id));
          // A running server may hold the job: then follow it until it ends (and take over if its lease lapses).
          let final = started;
          do {
            await rewrap.runHere(opts.org, started.id);
            final = await rewrap.get(caller, started.id);
            if (final.state === 'queued' || final.state === 'running') await new Promise((r) => setTimeout(r, 250));
          } while (final.state === 'queued' || final.state === 'running');
          await progress.stop(final);
          await rewrap.stop();
          if (opts.json) process.stdout.write(JSON.stringify(final) + '\n');
          else process.stdout.write(`Rewrap job ${final.id} ${final.state}: ${final.done} of ${final.total ?? 0} data keys rewrapped, ${final.failed} failed.\n`);
          for (const line of errorGroupLines(final)) process.stderr.write(`${line}\n`);
          if (final.state !== 'succeeded') process.exitCode = 1;
        } finally {
          for (const client of kms.clients.values()) client.destroy();
          await database.close();
        }
      }),
    );
}

/** The failures, one paragraph per reason: how many, which key, what to do, and the first data key ids. */
export function errorGroupLines(job: JobModel): string[] {
  const lines: string[] = [];
  for (const g of job.errorGroups) {
    const what = g.count > 0 ? `${g.count} data key${g.count === 1 ? '' : 's'} failed${g.awsError ? ` (${g.awsError})` : ''}` : 'the job failed';
    lines.push(`  ${what}: ${g.reason}`);
    if (g.dataKeyIds.length > 0) {
      const more = g.count - g.dataKeyIds.length;
      lines.push(`    data keys: ${g.dataKeyIds.join(', ')}${more > 0 ? ` and ${more} more (all: GET /api/v2/jobs/${job.id}/errors)` : ''}`);
    }
  }
  return lines;
}

/**
 * Progress on stderr: a redrawn bar on a terminal, a line a second otherwise. `#` is rewrapped,
 * `x` failed, `.` still to do — so a job whose keys all failed never looks complete.
 */
function showProgress(read: () => Promise<JobModel>) {
  const started = Date.now();
  const tty = process.stderr.isTTY;
  const draw = (job: JobModel, final = false) => {
    const total = job.total ?? 0;
    const seconds = Math.max(0.001, (Date.now() - started) / 1000);
    const rate = job.done / seconds;
    const left = Math.max(0, total - job.done - job.failed);
    const eta = rate > 0 ? Math.ceil(left / rate) : 0;
    const width = 30;
    const ok = total > 0 ? Math.round((job.done / total) * width) : 0;
    const bad = total > 0 ? Math.min(width - ok, Math.round((job.failed / total) * width)) : 0;
    const bar = `[${'#'.repeat(ok)}${'x'.repeat(bad)}${'.'.repeat(width - ok - bad)}]`;
    const counts = total === 0 && job.total !== null ? 'nothing to rewrap' : `${job.done}/${total} rewrapped, ${job.failed} failed`;
    const line = `${bar} ${counts}  ${rate.toFixed(0)} keys/s${final ? '' : `  ETA ${eta}s`}`;
    process.stderr.write(tty ? `\r${line}` + (final ? '\n' : '') : `${line}\n`);
  };
  const timer = setInterval(() => void read().then((j) => draw(j), () => undefined), tty ? 200 : 1000);
  return {
    async stop(final: JobModel) {
      clearInterval(timer);
      draw(final, true);
    },
  };
}
