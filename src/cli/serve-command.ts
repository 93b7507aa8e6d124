import type { Command } from 'commander';
import { loadConfig } from '../config.js';
import { LOCAL_KMS_RECORD } from '../kms/local-kms-address.js';
import { startRuntime } from '../server/runtime.js';
import { runCommand } from './run-command.js';

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('Run the convault service (embedded SQLite and local KMS unless configured otherwise)')
    .option('--port <port>', 'HTTP port (PORT)')
    .option('--host <host>', 'bind address (HOST)')
    .option('--data-dir <dir>', 'data directory (CONVAULT_DATA_DIR)')
    .action((opts: { port?: string; host?: string; dataDir?: string }) =>
      runCommand(async () => {
        const config = loadConfig(process.env, { PORT: opts.port, HOST: opts.host, CONVAULT_DATA_DIR: opts.dataDir });
        const runtime = await startRuntime(config);
        const lines = [
          '',
          `convault is serving at ${runtime.url}`,
          `  Admin UI:  ${runtime.url}/  (sign in with the admin token)`,
          `  API docs:  ${runtime.url}/docs`,
          `  Database:  ${runtime.database.dialect} (${runtime.database.location})`,
          runtime.kms.localKms
            ? `  Local KMS: ${runtime.kms.localKms.url}  (./convault kms … and ./convault rewrap find it through ${LOCAL_KMS_RECORD} in the data dir)`
            : `  KMS:       ${runtime.kms.endpoint}`,
        ];
        if (runtime.bootstrap.created && config.bootstrapToken !== undefined) {
          // The operator chose it: it is already where they keep it, so it is not echoed to logs.
          lines.push(`  Admin token: the value of CONVAULT_BOOTSTRAP_TOKEN (also written to ${runtime.bootstrap.tokenFile}, mode 0600)`);
        } else if (runtime.bootstrap.created) {
          lines.push(
            `  Admin token (shown once, also written to ${runtime.bootstrap.tokenFile}, mode 0600):`,
            `    ${runtime.bootstrap.token}`,
          );
        } else {
          lines.push(`  Admin token: in ${config.dataDir}/admin-token (written on the first start)`);
        }
        if (runtime.demoKeyAliasArn) {
          lines.push(`  Demo customer key (local KMS, account 111122223333): ${runtime.demoKeyAliasArn}`);
        }
        lines.push(`  Try: curl -H "Authorization: Bearer $(cat ${config.dataDir}/admin-token)" ${runtime.url}/api/v2/organizations/me`, '');
        process.stdout.write(lines.join('\n') + '\n');

        let stopping = false;
        const stop = (signal: string) => {
          if (stopping) return;
          stopping = true;
          runtime.app.log.info({ signal }, 'shutting down: finishing in-flight requests');
          runtime.close().then(
            () => process.exit(0),
            (err) => {
              process.stderr.write(`convault: shutdown failed: ${(err as Error).message}\n`);
              process.exit(1);
            },
          );
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
        return new Promise<void>(() => undefined); // serve until a signal
      }),
    );
}
