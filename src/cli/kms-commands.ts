import fs from 'node:fs';
import {
  CancelKeyDeletionCommand,
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  GetKeyPolicyCommand,
  PutKeyPolicyCommand,
  ScheduleKeyDeletionCommand,
  UpdateAliasCommand,
  type KeyMetadata,
  type KMSClient,
} from '@aws-sdk/client-kms';
import { Command, CommanderError, Option } from 'commander';
import { loadConfig, type Config } from '../config.js';
import { createKmsClient } from '../kms/client-factory.js';
import { forgetLocalKmsUrl, kmsAddressForCli, recordLocalKmsUrl, unreachableKmsMessage } from '../kms/local-kms-address.js';
import { customerKeyPolicy } from '../kms/key-policy.js';
import { resolveLocalKmsAdminSecret, resolveLocalKmsRootKey, startLocalKms, type LocalKms } from '../localkms/index.js';
import { openDatabase } from '../store/database.js';
import { credentialsForAccount, issueCredentials } from './local-kms-credentials.js';

/**
 * `convault kms …`: run the local KMS alone (`serve`), or play the customer who owns a key — create
 * it with a policy for the platform, disable, schedule deletion, retarget its alias, change its
 * policy. Every command but `serve` talks to a running KMS through the AWS SDK (see kmsAddressForCli:
 * CONVAULT_KMS_ENDPOINT, PORT / CONVAULT_LOCAL_KMS_PORT, or the URL the server recorded in its data
 * dir), signing with the key owner's access key (see local-kms-credentials.ts); `credentials` prints that key.
 *
 * Output and errors go through commander's output configuration, and failures through
 * `command.error()`, so a caller can capture them and override the exit (tests do).
 */

interface ClientOptions {
  account?: string;
  region?: string;
  json?: boolean;
}

const KMS_ARN = /^arn:aws:kms:([a-z0-9-]+):(\d{12}):(?:key|alias)\/.+$/;

export function registerKmsCommands(program: Command): void {
  const kms = program
    .command('kms')
    .description('The local KMS: run it alone, or act as the customer who owns a key (create, disable, delete, rotate, re-policy)');

  kms
    .command('serve')
    .description('Run the local KMS alone (keys in <CONVAULT_DATA_DIR>/localkms.db, or in DATABASE_URL\'s database)')
    .option('--port <port>', 'port to listen on (default CONVAULT_LOCAL_KMS_PORT, or PORT+1)')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--insecure-any-account', 'DEVELOPMENT ONLY: accept any 12-digit access key id as that account without checking signatures')
    .action(async (opts: { port?: string; host: string; insecureAnyAccount?: boolean }, cmd: Command) => {
      await run(cmd, async () => {
        const served = await serveLocalKms({ port: opts.port, host: opts.host, insecureAnyAccount: opts.insecureAnyAccount === true }, cmd);
        const stop = () => {
          served.close().then(
            () => process.exit(0),
            () => process.exit(1),
          );
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });

  kms
    .command('credentials')
    .description("Print the local KMS access key of an account (issued on the first call, as an operator does in IAM); needs the KMS's data dir")
    .requiredOption('--account <id>', '12-digit account id')
    .option('--json', 'print JSON')
    .action(async (opts: { account: string; json?: boolean }, cmd: Command) => {
      await run(cmd, async () => {
        if (!/^\d{12}$/.test(opts.account)) throw new UserError(`--account must be a 12-digit AWS account id, not ${opts.account}`);
        const config = loadConfig();
        const endpoint = kmsAddressForCli(config).endpoint;
        const key = await issueCredentials({ account: opts.account, dataDir: config.dataDir, endpoint });
        print(cmd, opts, key, () => `AWS_ACCESS_KEY_ID=${key.accessKeyId}\nAWS_SECRET_ACCESS_KEY=${key.secretAccessKey}`);
      });
    });

  withClientOptions(
    kms
      .command('create-key')
      .description('Create a symmetric key; with --allow-org its policy lets the platform use it for those organizations only')
      .requiredOption('--account <id>', "the customer's 12-digit AWS account id (owner of the key)")
      .option('--alias <name>', 'alias to create for the key, e.g. alias/contact-center')
      .option('--allow-org <orgId>', 'organization id the platform may use the key for (repeatable)', collect, [] as string[])
      .option('--description <text>', 'key description', 'convault customer key'),
    false,
  ).action(async (opts: ClientOptions & { account: string; alias?: string; allowOrg: string[]; description: string }, cmd: Command) => {
    await withClient(cmd, opts, undefined, async ({ client, config, account, region }) => {
      checkOrgIds(opts.allowOrg);
      if (opts.alias) {
        // Refuse before creating a key the alias could then not name.
        const existing = await client.send(new DescribeKeyCommand({ KeyId: opts.alias })).catch((err: Error) => {
          if (err.name === 'NotFoundException') return undefined;
          throw err;
        });
        if (existing) throw new UserError(`${opts.alias} already exists (it names ${existing.KeyMetadata?.Arn}); use kms update-alias to retarget it`);
      }
      const policy = opts.allowOrg.length > 0 ? JSON.stringify(platformPolicy(config, account, opts.allowOrg), null, 2) : undefined;
      const created = await client.send(new CreateKeyCommand({ Description: opts.description, ...(policy ? { Policy: policy } : {}) }));
      const meta = created.KeyMetadata!;
      let aliasArn: string | undefined;
      if (opts.alias) {
        await client.send(new CreateAliasCommand({ AliasName: opts.alias, TargetKeyId: meta.KeyId! }));
        aliasArn = `arn:aws:kms:${region}:${account}:${opts.alias}`;
      }
      const result = { keyId: meta.KeyId!, keyArn: meta.Arn!, ...(aliasArn ? { aliasArn } : {}) };
      print(cmd, opts, result, () => {
        const grants = opts.allowOrg.length > 0 ? `; the platform may use it for ${opts.allowOrg.join(', ')}` : '; default policy (account root only)';
        return `Created key ${meta.Arn}${aliasArn ? ` with alias ${aliasArn}` : ''}${grants}`;
      });
    });
  });

  keyCommand(kms, 'disable-key', 'Disable a key: the platform can no longer use it (reversible with enable-key)').action(
    async (opts: ClientOptions & { key: string }, cmd: Command) => {
      await withClient(cmd, opts, opts.key, async ({ client }) => {
        const keyArn = await keyArnOf(client, opts.key);
        await client.send(new DisableKeyCommand({ KeyId: keyArn }));
        await printKeyState(cmd, opts, client, keyArn, 'Disabled');
      });
    },
  );

  keyCommand(kms, 'enable-key', 'Enable a disabled key').action(async (opts: ClientOptions & { key: string }, cmd: Command) => {
    await withClient(cmd, opts, opts.key, async ({ client }) => {
      const keyArn = await keyArnOf(client, opts.key);
      await client.send(new EnableKeyCommand({ KeyId: keyArn }));
      await printKeyState(cmd, opts, client, keyArn, 'Enabled');
    });
  });

  keyCommand(kms, 'schedule-deletion', 'Schedule a key for deletion after a waiting period (7-30 days)')
    .option('--days <n>', 'waiting period in days (7-30)', '30')
    .action(async (opts: ClientOptions & { key: string; days: string }, cmd: Command) => {
      await withClient(cmd, opts, opts.key, async ({ client }) => {
        const days = Number(opts.days);
        if (!Number.isInteger(days)) throw new UserError('--days must be a whole number of days between 7 and 30');
        const out = await client.send(new ScheduleKeyDeletionCommand({ KeyId: await keyArnOf(client, opts.key), PendingWindowInDays: days }));
        const result = { keyId: out.KeyId!, keyState: out.KeyState!, deletionDate: out.DeletionDate!.toISOString(), pendingWindowInDays: out.PendingWindowInDays! };
        print(cmd, opts, result, () => `Key ${result.keyId} is PendingDeletion; it will be deleted on ${result.deletionDate}`);
      });
    });

  keyCommand(kms, 'cancel-deletion', 'Cancel a scheduled deletion (the key comes back Disabled, as in AWS)').action(
    async (opts: ClientOptions & { key: string }, cmd: Command) => {
      await withClient(cmd, opts, opts.key, async ({ client }) => {
        const out = await client.send(new CancelKeyDeletionCommand({ KeyId: await keyArnOf(client, opts.key) }));
        const result = { keyId: out.KeyId!, keyState: 'Disabled' };
        print(cmd, opts, result, () => `Deletion of ${result.keyId} cancelled; the key is Disabled (enable it with kms enable-key)`);
      });
    },
  );

  withClientOptions(
    kms
      .command('update-alias')
      .description('Point an alias at another key (rotation by alias)')
      .requiredOption('--alias <name>', 'alias name, e.g. alias/contact-center')
      .requiredOption('--target-key <key>', 'key id, key ARN or alias the alias should name'),
    true,
  ).action(async (opts: ClientOptions & { alias: string; targetKey: string }, cmd: Command) => {
    await withClient(cmd, opts, opts.targetKey, async ({ client, account, region }) => {
      await client.send(new UpdateAliasCommand({ AliasName: opts.alias, TargetKeyId: await keyArnOf(client, opts.targetKey) }));
      const described = await client.send(new DescribeKeyCommand({ KeyId: opts.alias }));
      const result = { aliasArn: `arn:aws:kms:${region}:${account}:${opts.alias}`, targetKeyArn: described.KeyMetadata!.Arn! };
      print(cmd, opts, result, () => `${result.aliasArn} now names ${result.targetKeyArn}`);
    });
  });

  keyCommand(kms, 'put-policy', 'Replace the key policy: platform access for --allow-org ids, a policy --file, or --no-platform')
    .option('--allow-org <orgId>', 'organization id the platform may use the key for (repeatable)', collect, [] as string[])
    .option('--file <path>', 'key policy JSON document to put as is')
    .addOption(new Option('--no-platform', 'remove the platform: the default policy (account root only)'))
    .action(async (opts: ClientOptions & { key: string; allowOrg: string[]; file?: string; platform: boolean }, cmd: Command) => {
      await withClient(cmd, opts, opts.key, async ({ client, config, account }) => {
        const chosen = [opts.allowOrg.length > 0, opts.file !== undefined, opts.platform === false].filter(Boolean).length;
        if (chosen !== 1) throw new UserError('give exactly one of --allow-org <orgId>…, --file <policy.json> or --no-platform');
        checkOrgIds(opts.allowOrg);
        let policy: string;
        let summary: string;
        if (opts.file !== undefined) {
          policy = readPolicyFile(opts.file);
          summary = `the policy in ${opts.file}`;
        } else {
          policy = JSON.stringify(platformPolicy(config, account, opts.allowOrg), null, 2);
          summary = opts.allowOrg.length > 0 ? `the platform allowed for ${opts.allowOrg.join(', ')}` : 'account root only, no platform access';
        }
        const keyArn = await keyArnOf(client, opts.key);
        await client.send(new PutKeyPolicyCommand({ KeyId: keyArn, PolicyName: 'default', Policy: policy }));
        const result = { keyId: keyArn, policy: JSON.parse(policy) as unknown };
        print(cmd, opts, result, () => `Key policy of ${keyArn} replaced: ${summary}`);
      });
    });

  keyCommand(kms, 'get-policy', 'Print the key policy').action(async (opts: ClientOptions & { key: string }, cmd: Command) => {
    await withClient(cmd, opts, opts.key, async ({ client }) => {
      const keyArn = await keyArnOf(client, opts.key);
      const out = await client.send(new GetKeyPolicyCommand({ KeyId: keyArn, PolicyName: 'default' }));
      const policy = JSON.parse(out.Policy!) as unknown;
      print(cmd, opts, { keyId: keyArn, policy }, () => JSON.stringify(policy, null, 2));
    });
  });

  keyCommand(kms, 'describe-key', 'Show a key (by key id, key ARN, alias name or alias ARN)').action(
    async (opts: ClientOptions & { key: string }, cmd: Command) => {
      await withClient(cmd, opts, opts.key, async ({ client }) => {
        const out = await client.send(new DescribeKeyCommand({ KeyId: opts.key }));
        const m = out.KeyMetadata!;
        print(cmd, opts, metadataJson(m), () =>
          [`${m.Arn}  ${m.KeyState}`, m.Description ? `"${m.Description}"` : '', m.DeletionDate ? `deletion on ${m.DeletionDate.toISOString()}` : '']
            .filter(Boolean)
            .join('  '),
        );
      });
    },
  );
}

/**
 * Runs the local KMS on its own: its own SQLite file `localkms.db` in the data dir, or the
 * DATABASE_URL database when set (own `localkms_` tables). Exported so it can be driven in-process.
 */
export async function serveLocalKms(
  opts: { port?: string; host?: string; insecureAnyAccount?: boolean },
  cmd?: Command,
): Promise<{ kms: LocalKms; location: string; close(): Promise<void> }> {
  const config = loadConfig(process.env, { CONVAULT_LOCAL_KMS_PORT: opts.port });
  const host = opts.host ?? '127.0.0.1';
  const database = await openDatabase<any>({ url: config.databaseUrl, dataDir: config.dataDir, fileName: 'localkms.db', busyTimeoutMs: config.sqliteBusyTimeoutMs });
  let kms: LocalKms;
  try {
    kms = await startLocalKms({
      db: database.db,
      dialect: database.dialect,
      rootKey: resolveLocalKmsRootKey({ rootKeyHex: config.kms.localRootKeyHex, dataDir: config.dataDir }),
      port: config.kms.localPort,
      host,
      principalsFile: config.kms.localPrincipalsFile,
      adminSecret: resolveLocalKmsAdminSecret(config.dataDir),
      faultEndpoint: config.kms.localFaultEndpoint,
      insecureAnyAccount: opts.insecureAnyAccount === true,
      allowedHosts: [host],
      // The one line below says where it listens; only warnings come from the server itself.
      logger: { info: () => undefined, warn: (m) => writeErr(cmd, `${m}\n`) },
    });
  } catch (err) {
    await database.close();
    throw err;
  }
  if (!['127.0.0.1', '::1', 'localhost'].includes(host)) {
    writeErr(cmd, `warning: the local KMS is reachable beyond this machine (${host}); its traffic is plain HTTP\n`);
  }
  database.setLogger({ warn: (obj, msg) => writeErr(cmd, `${msg} ${JSON.stringify(obj)}\n`) });
  recordLocalKmsUrl(config.dataDir, kms.url);
  writeOut(cmd, `local KMS serving at ${kms.url} (keys in ${database.location}); stop with Ctrl-C\n`);
  return {
    kms,
    location: database.location,
    async close() {
      forgetLocalKmsUrl(config.dataDir, kms.url);
      await kms.close();
      await database.close();
    },
  };
}

// ---------------------------------------------------------------------------------------------

class UserError extends Error {}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Organization ids are UUIDs (GET /api/v2/organizations/me → id): anything else in a key policy would grant nothing. */
const ORG_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function checkOrgIds(orgIds: readonly string[]): void {
  const bad = orgIds.find((id) => !ORG_ID.test(id));
  if (bad !== undefined) {
    throw new UserError(`--allow-org ${JSON.stringify(bad)} is not an organization id (a UUID, as GET /api/v2/organizations/me returns as id)`);
  }
}

function withClientOptions(cmd: Command, accountOptional: boolean): Command {
  if (accountOptional) cmd.option('--account <id>', 'account that owns the key (default: the one in an ARN given)');
  return cmd.option('--region <region>', 'AWS region (default: the one in an ARN given, else AWS_REGION)').option('--json', 'print JSON');
}

function keyCommand(kms: Command, name: string, description: string): Command {
  return withClientOptions(
    kms.command(name).description(description).requiredOption('--key <key>', 'key id, key ARN, alias name or alias ARN'),
    true,
  );
}

function platformPolicy(config: Config, account: string, orgIds: string[]) {
  return customerKeyPolicy({
    customerAccountId: account,
    platformAccountId: config.kms.platformAccountId,
    encryptionContextKey: config.kms.encryptionContextKey,
    orgIds,
  });
}

function readPolicyFile(file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    JSON.parse(text);
  } catch {
    throw new UserError(`${file} is not valid JSON`);
  }
  return text;
}

interface ClientContext {
  client: KMSClient;
  config: Config;
  account: string;
  region: string;
  endpoint: string;
}

async function withClient(cmd: Command, opts: ClientOptions, keyRef: string | undefined, action: (ctx: ClientContext) => Promise<void>) {
  await run(cmd, async () => {
    const config = loadConfig();
    const fromArn = keyRef ? KMS_ARN.exec(keyRef) : null;
    const account = opts.account ?? fromArn?.[2];
    if (!account) throw new UserError('--account is required (the 12-digit account that owns the key) unless the key is given as an ARN');
    if (!/^\d{12}$/.test(account)) throw new UserError(`--account must be a 12-digit AWS account id, not ${account}`);
    const region = opts.region ?? fromArn?.[1] ?? config.kms.region;
    const address = kmsAddressForCli(config);
    const endpoint = address.endpoint;
    let client: ReturnType<typeof createKmsClient> | undefined;
    try {
      const credentials = await credentialsForAccount({ account, dataDir: config.dataDir, endpoint });
      client = createKmsClient({ endpoint, region, credentials, maxAttempts: 2 });
      await action({ client, config, account, region, endpoint });
    } catch (err) {
      const code = (err as { code?: string }).code ?? (err as { cause?: { code?: string } }).cause?.code;
      if (code === 'ECONNREFUSED') {
        throw new UserError(unreachableKmsMessage(address, config.dataDir));
      }
      throw err;
    } finally {
      client?.destroy();
    }
  });
}

/** One line on stderr and a non-zero exit for any failure; commander's exit override applies. */
async function run(cmd: Command, action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (err) {
    if (err instanceof CommanderError) throw err;
    const e = err as Error & { $metadata?: unknown };
    // SDK errors carry the AWS exception name, which says most (NotFoundException, DisabledException, …).
    const message = e.$metadata !== undefined ? `${e.name}: ${e.message}` : e.message || String(err);
    cmd.error(`convault: ${message.split('\n')[0]}`, { exitCode: 1, code: 'convault.kms' });
  }
}

/**
 * Key-management operations take key ids and key ARNs only (as in AWS); the CLI also takes an alias
 * for convenience and resolves it with DescribeKey first.
 */
async function keyArnOf(client: KMSClient, keyRef: string): Promise<string> {
  if (!keyRef.startsWith('alias/') && !/^arn:[^:]+:kms:[^:]*:[^:]*:alias\//.test(keyRef)) return keyRef;
  return (await client.send(new DescribeKeyCommand({ KeyId: keyRef }))).KeyMetadata!.Arn!;
}

async function printKeyState(cmd: Command, opts: ClientOptions, client: KMSClient, keyRef: string, expected: string): Promise<void> {
  const m = (await client.send(new DescribeKeyCommand({ KeyId: keyRef }))).KeyMetadata!;
  const result = { keyId: m.Arn!, keyState: m.KeyState ?? expected };
  print(cmd, opts, result, () => `Key ${result.keyId} is ${result.keyState}`);
}

function metadataJson(m: KeyMetadata) {
  return {
    keyId: m.KeyId,
    keyArn: m.Arn,
    accountId: m.AWSAccountId,
    keyState: m.KeyState,
    enabled: m.Enabled,
    description: m.Description,
    keySpec: m.KeySpec,
    keyUsage: m.KeyUsage,
    creationDate: m.CreationDate?.toISOString(),
    ...(m.DeletionDate ? { deletionDate: m.DeletionDate.toISOString() } : {}),
    multiRegion: m.MultiRegion,
  };
}

function print(cmd: Command, opts: { json?: boolean }, value: unknown, human: () => string): void {
  writeOut(cmd, `${opts.json ? JSON.stringify(value, null, 2) : human()}\n`);
}

function writeOut(cmd: Command | undefined, text: string): void {
  const write = cmd?.configureOutput().writeOut;
  if (write) write(text);
  else process.stdout.write(text);
}

function writeErr(cmd: Command | undefined, text: string): void {
  const write = cmd?.configureOutput().writeErr;
  if (write) write(text);
  else process.stderr.write(text);
}
