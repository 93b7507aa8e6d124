import fs from 'node:fs';
import path from 'node:path';
import type { KmsCredentials } from '../kms/client-factory.js';
import { ensurePrivateDir } from '../store/private-files.js';
import { CREDENTIALS_PATH, readLocalKmsAdminSecret } from '../localkms/index.js';

/**
 * The access key a `convault kms …` command signs with, for `account`: AWS_ACCESS_KEY_ID /
 * AWS_SECRET_ACCESS_KEY when set (as any AWS tool takes them); else the key kept in
 * `<dataDir>/localkms-credentials/<account>.json` (0600); else one the local KMS issues now through
 * its admin endpoint — which needs the admin secret of the data dir, i.e. the operator — kept there.
 */

export const CREDENTIALS_DIR = 'localkms-credentials';

export class CredentialsError extends Error {}

export async function credentialsForAccount(opts: { account: string; dataDir: string; endpoint: string; env?: NodeJS.ProcessEnv }): Promise<KmsCredentials> {
  const env = opts.env ?? process.env;
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) return { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY };
  return readKept(opts.dataDir, opts.account) ?? (await issueCredentials(opts));
}

/** Asks the local KMS at `endpoint` for the account's access key (created on the first call) and keeps it in the data dir. */
export async function issueCredentials(opts: { account: string; dataDir: string; endpoint: string }): Promise<KmsCredentials> {
  const secret = readLocalKmsAdminSecret(opts.dataDir);
  if (!secret) {
    throw new CredentialsError(
      `no local KMS admin secret in ${opts.dataDir} to issue credentials for ${opts.account}: run this on the data dir of the local KMS, ` +
        'or pass the account\'s key in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY',
    );
  }
  let res: Response;
  try {
    res = await fetch(new URL(CREDENTIALS_PATH, opts.endpoint), {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ accountId: opts.account }),
    });
  } catch {
    throw new CredentialsError(`cannot reach a KMS at ${opts.endpoint}; start one with \`convault kms serve\` (or \`convault serve\`), or set CONVAULT_KMS_ENDPOINT`);
  }
  const body = (await res.json().catch(() => ({}))) as Partial<KmsCredentials> & { message?: string };
  if (res.status !== 200 || !body.accessKeyId || !body.secretAccessKey) {
    throw new CredentialsError(`the KMS at ${opts.endpoint} did not issue credentials (${res.status}${body.message ? `: ${body.message}` : ''})`);
  }
  const issued = { accessKeyId: body.accessKeyId, secretAccessKey: body.secretAccessKey };
  keep(opts.dataDir, opts.account, issued);
  return issued;
}

function fileOf(dataDir: string, account: string): string {
  return path.join(dataDir, CREDENTIALS_DIR, `${account}.json`);
}

function readKept(dataDir: string, account: string): KmsCredentials | undefined {
  try {
    const parsed = JSON.parse(fs.readFileSync(fileOf(dataDir, account), 'utf8')) as Partial<KmsCredentials>;
    if (typeof parsed.accessKeyId === 'string' && typeof parsed.secretAccessKey === 'string') return { accessKeyId: parsed.accessKeyId, secretAccessKey: parsed.secretAccessKey };
  } catch {
    // absent or unreadable: issue anew
  }
  return undefined;
}

function keep(dataDir: string, account: string, key: KmsCredentials): void {
  const dir = path.join(dataDir, CREDENTIALS_DIR);
  ensurePrivateDir(dataDir);
  ensurePrivateDir(dir);
  const file = fileOf(dataDir, account);
  fs.writeFileSync(file, `${JSON.stringify(key)}\n`, { mode: 0o600 });
  fs.chmodSync(file, 0o600);
}
