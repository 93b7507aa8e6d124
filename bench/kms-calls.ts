import type { BenchOrg, BenchStack } from './stack.js';

export interface KmsCallReport {
  label: string;
  conversations: number;
  valuesWritten: number;
  valuesRead: number;
  maxConversationsPerDataKey: number;
  /** Data-key windows the run needed: ⌈conversations / max per key⌉ (the run is far shorter than the 1 h window). */
  windows: number;
  dataKeys: number;
  generateDataKey: number;
  decrypt: number;
  totalKmsCalls: number;
  seconds: number;
}

/**
 * (d) How many KMS calls secured data costs: write `conversations × valuesPerConversation` values
 * through the service (one PUT per conversation), then read every conversation back, counting the
 * KMS calls of each operation in the gateway's metrics.
 */
export async function countKmsCalls(
  stack: BenchStack,
  org: BenchOrg,
  opts: { label: string; conversations: number; valuesPerConversation: number; maxConversations: number; readBack: boolean },
): Promise<KmsCallReport> {
  const { securedData } = org.service({ maxConversations: opts.maxConversations });
  const countDataKeys = async () =>
    Number(
      (
        await stack.database.db
          .selectFrom('org_data_keys')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('org_id', '=', org.orgId)
          .executeTakeFirstOrThrow()
      ).n,
    );
  const dataKeysBefore = await countDataKeys();
  const gdkBefore = stack.metrics.count('GenerateDataKey');
  const decryptBefore = stack.metrics.count('Decrypt');
  const allBefore = stack.metrics.count();
  const prefix = `${opts.label.replace(/\W+/g, '-')}-`;
  const data: Record<string, string> = {};
  for (let i = 0; i < opts.valuesPerConversation; i++) data[`attr${i}`] = `value-${i}-${'x'.repeat(16)}`;
  const started = process.hrtime.bigint();
  for (let c = 0; c < opts.conversations; c++) {
    await securedData.replace(org.caller, `${prefix}${c}`, { data });
  }
  let valuesRead = 0;
  if (opts.readBack) {
    for (let c = 0; c < opts.conversations; c++) {
      const got = await securedData.get(org.caller, `${prefix}${c}`);
      valuesRead += Object.keys(got.data).length;
    }
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const generateDataKey = stack.metrics.count('GenerateDataKey') - gdkBefore;
  return {
    label: opts.label,
    conversations: opts.conversations,
    valuesWritten: opts.conversations * opts.valuesPerConversation,
    valuesRead,
    maxConversationsPerDataKey: opts.maxConversations,
    windows: Math.ceil(opts.conversations / opts.maxConversations),
    dataKeys: (await countDataKeys()) - dataKeysBefore,
    generateDataKey,
    decrypt: stack.metrics.count('Decrypt') - decryptBefore,
    totalKmsCalls: stack.metrics.count() - allBefore,
    seconds,
  };
}
