import fs from 'node:fs';
import { z } from 'zod';
import { accountRootArn, isAccountId } from './arns.js';

/**
 * Principals named in a file (IAM users and roles with their access keys), read once at start. Every
 * entry carries its secret, so its signatures are verified; only a local KMS started with
 * `insecureAnyAccount` admits entries without one (and bare 12-digit account ids, see server.ts).
 *
 *   { "principals": [
 *       { "accessKeyId": "AKIAPLATFORM", "secretAccessKey": "…", "arn": "arn:aws:iam::444455556666:role/convault" },
 *       { "accessKeyId": "111122223333", "secretAccessKey": "…" } ] }
 */

export interface Principal {
  arn: string;
  accountId: string;
}

export interface PrincipalEntry extends Principal {
  accessKeyId: string;
  /** The signing secret; absent only in the insecure development mode, where the id is trusted as is. */
  secretAccessKey?: string;
}

const PRINCIPAL_ARN = /^arn:aws:(?:iam::(\d{12}):(?:root|user\/[\w+=,.@/-]+|role\/[\w+=,.@/-]+)|sts::(\d{12}):assumed-role\/[\w+=,.@-]+\/[\w+=,.@-]+)$/;

const fileSchema = z.object({
  principals: z.array(
    z.object({
      accessKeyId: z.string().regex(/^[A-Za-z0-9]{12,128}$/, 'must be 12-128 letters or digits'),
      secretAccessKey: z.string().min(1).optional(),
      arn: z.string().regex(PRINCIPAL_ARN, 'must be an IAM root, user or role ARN, or an STS assumed-role ARN').optional(),
    }),
  ),
});

export class PrincipalDirectory {
  private readonly byAccessKeyId: Map<string, PrincipalEntry>;

  constructor(entries: PrincipalEntry[] = []) {
    this.byAccessKeyId = new Map(entries.map((e) => [e.accessKeyId, e]));
  }

  static fromFile(file: string, opts: { requireSecrets: boolean } = { requireSecrets: true }): PrincipalDirectory {
    let raw: unknown;
    try {
      raw = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (err) {
      throw new Error(`cannot read the local KMS principals file ${file}: ${(err as Error).message}`);
    }
    const parsed = fileSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new Error(`invalid local KMS principals file ${file}: ${issue.path.join('.')}: ${issue.message}`);
    }
    return new PrincipalDirectory(
      parsed.data.principals.map((p) => {
        if (opts.requireSecrets && p.secretAccessKey === undefined) {
          throw new Error(`invalid local KMS principals file ${file}: ${p.accessKeyId} needs a "secretAccessKey" (every caller signs its requests)`);
        }
        if (!p.arn && !isAccountId(p.accessKeyId)) {
          throw new Error(`invalid local KMS principals file ${file}: ${p.accessKeyId} needs an "arn"`);
        }
        const arn = p.arn ?? accountRootArn(p.accessKeyId);
        return { accessKeyId: p.accessKeyId, secretAccessKey: p.secretAccessKey, arn, accountId: accountOf(arn) };
      }),
    );
  }

  /** The directory entry; undefined → not in the file. */
  lookup(accessKeyId: string): PrincipalEntry | undefined {
    return this.byAccessKeyId.get(accessKeyId);
  }
}

function accountOf(arn: string): string {
  return arn.split(':')[4]!;
}
