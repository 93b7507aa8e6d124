import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { COMMITTING_SUITE, convaultServiceRoundTrip, convaultValuePath, envelopeOnly, esdk, rawAesGcm, SIGNING_DEFAULT_SUITE, VALUE_BYTES } from './crypto-throughput.js';
import { countKmsCalls, type KmsCallReport } from './kms-calls.js';
import { formatRate, measureInterleaved, type Measurement } from './measure.js';
import { startBenchStack } from './stack.js';

/**
 * `npm run bench`: the secured-data benchmark of issue 5 (DESIGN.md, docs/BENCHMARKS.md).
 * Prints the figures and rewrites docs/BENCHMARKS.md with them. Not a test: nothing here asserts.
 *
 *   BENCH_QUICK=1   shorter run (100,000 values) for a smoke check; the document says so.
 */

const quick = process.env.BENCH_QUICK === '1';
const TARGETS = { bOverA: 0.5, bOverC: 10, gdkPerWindow: 1 };
// Odd, so one block is the median one; the range over all of them decides whether a verdict is certain.
const ROUNDS = quick ? 3 : 5;

/** The block whose b/a is the median: every figure and ratio the summary shows comes from it. */
function medianBlock(rounds: Measurement[][]): { block: Measurement[]; index: number } {
  const byRatio = rounds.map((r, index) => ({ index, ratio: r[1]!.opsPerSecond / r[0]!.opsPerSecond })).sort((x, y) => x.ratio - y.ratio);
  const index = byRatio[byRatio.length >> 1]!.index;
  return { block: rounds[index]!, index };
}

export interface RatioRange {
  min: number;
  max: number;
}

/** met / missed only when every block agrees; a range across the target is uncertain. */
function rangeVerdict(range: RatioRange, target: number): string {
  if (range.min >= target) return 'met';
  if (range.max < target) return '**missed**';
  return '**uncertain** (the blocks straddle the target)';
}

async function main(): Promise<void> {
  const started = Date.now();
  const loadAtStart = os.loadavg()[0]!;
  const log = (line = '') => process.stdout.write(`${line}\n`);
  log(`convault benchmark — node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown CPU'} × ${os.cpus().length}${quick ? ' (BENCH_QUICK)' : ''}`);

  const stack = await startBenchStack();
  try {
    log('\nThroughput, 256-byte values, one encrypt + one decrypt per operation:');
    const throughputOrg = await stack.newOrg('Throughput org');
    const cases = [
      rawAesGcm(),
      await convaultValuePath(throughputOrg),
      await convaultServiceRoundTrip(throughputOrg),
      esdk(COMMITTING_SUITE, '(c) ESDK, raw AES keyring + caching CMM, committing non-signing suite'),
      esdk(SIGNING_DEFAULT_SUITE, "(c′) ESDK, same, default signing suite (reference)"),
      envelopeOnly(),
    ];
    // The cases run in alternating 25 ms slices, so a burst of load from elsewhere on the machine falls
    // on all of them alike. Several such blocks: the summary shows the median block (by b/a), figures
    // and ratios alike, and each verdict looks at the range over all blocks.
    const rounds: Measurement[][] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const results = await measureInterleaved(cases, { sliceMs: 25, perCaseMs: quick ? 700 : 2_000 });
      rounds.push(results);
      log(`  block ${round + 1}/${ROUNDS}: ${results.map((m) => formatRate(m.opsPerSecond)).join(' / ')} ops/s`);
    }
    const { block, index } = medianBlock(rounds);
    const [a, b, bService, c, cSigning, b0] = block;
    const bOverA = b!.opsPerSecond / a!.opsPerSecond;
    const bOverC = b!.opsPerSecond / c!.opsPerSecond;
    const rangeOf = (num: number, den: number): RatioRange => {
      const xs = rounds.map((r) => r[num]!.opsPerSecond / r[den]!.opsPerSecond);
      return { min: Math.min(...xs), max: Math.max(...xs) };
    };
    const bOverARange = rangeOf(1, 0);
    const bOverCRange = rangeOf(1, 3);
    log(`\nmedian block (by b/a): ${index + 1}`);
    for (const m of [a!, b0!, b!, bService!, c!, cSigning!]) log(line(m));
    log(
      `\nb/a = ${bOverA.toFixed(2)}, blocks ${bOverARange.min.toFixed(2)}–${bOverARange.max.toFixed(2)} (target ≥ ${TARGETS.bOverA}: ${rangeVerdict(bOverARange, TARGETS.bOverA)})` +
        `   b/c = ${bOverC.toFixed(1)}, blocks ${bOverCRange.min.toFixed(1)}–${bOverCRange.max.toFixed(1)} (target ≥ ${TARGETS.bOverC}: ${rangeVerdict(bOverCRange, TARGETS.bOverC)})`,
    );

    log('\nKMS calls (d):');
    const conversations = quick ? 1_000 : 10_000;
    const d = await countKmsCalls(stack, await stack.newOrg('One window org'), {
      label: 'one window',
      conversations,
      valuesPerConversation: 100,
      maxConversations: 10_000,
      readBack: true,
    });
    log(kmsLine(d));
    const dWindows = await countKmsCalls(stack, await stack.newOrg('Ten windows org'), {
      label: 'ten windows',
      conversations: quick ? 1_000 : 10_000,
      valuesPerConversation: 1,
      maxConversations: quick ? 100 : 1_000,
      readBack: false,
    });
    log(kmsLine(dWindows));

    const report = renderReport({ a: a!, b0: b0!, b: b!, bService: bService!, c: c!, cSigning: cSigning!, bOverA, bOverC, bOverARange, bOverCRange, medianIndex: index, loadAtStart, d, dWindows, rounds, seconds: (Date.now() - started) / 1000 });
    const docPath = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'BENCHMARKS.md');
    fs.writeFileSync(docPath, report);
    log(`\nWrote ${path.relative(process.cwd(), docPath)} (${((Date.now() - started) / 1000).toFixed(0)} s).`);
  } finally {
    await stack.close();
  }
}

function line(m: Measurement): string {
  return `  ${m.name.padEnd(72)} ${formatRate(m.opsPerSecond).padStart(10)} ops/s`;
}

function kmsLine(r: KmsCallReport): string {
  return (
    `  ${r.label}: ${r.valuesWritten.toLocaleString('en-US')} values written + ${r.valuesRead.toLocaleString('en-US')} read over ` +
    `${r.conversations.toLocaleString('en-US')} conversations, ≤ ${r.maxConversationsPerDataKey.toLocaleString('en-US')} conversations per data key → ` +
    `${r.windows} window(s): GenerateDataKey ${r.generateDataKey}, Decrypt ${r.decrypt}, all KMS calls ${r.totalKmsCalls}, data keys ${r.dataKeys} (${r.seconds.toFixed(0)} s)`
  );
}

const verdict = (ok: boolean) => (ok ? 'met' : '**missed**');
const span = (r: RatioRange, digits: number) => `${r.min.toFixed(digits)}–${r.max.toFixed(digits)}`;

function renderReport(r: {
  a: Measurement;
  b0: Measurement;
  b: Measurement;
  bService: Measurement;
  c: Measurement;
  cSigning: Measurement;
  bOverA: number;
  bOverC: number;
  bOverARange: RatioRange;
  bOverCRange: RatioRange;
  medianIndex: number;
  loadAtStart: number;
  d: KmsCallReport;
  dWindows: KmsCallReport;
  rounds: Measurement[][];
  seconds: number;
}): string {
  const rate = (m: Measurement) => formatRate(m.opsPerSecond);
  const b0OverA = r.b0.opsPerSecond / r.a.opsPerSecond;
  const bOverB0 = r.b.opsPerSecond / r.b0.opsPerSecond;
  const gdkPerWindow = Math.max(r.d.generateDataKey / r.d.windows, r.dWindows.generateDataKey / r.dWindows.windows);
  const dOk = gdkPerWindow <= TARGETS.gdkPerWindow;
  return `# Benchmarks

Generated by \`npm run bench\` (bench/run.ts) — do not edit by hand; run it again.${quick ? '\n\n> **Quick run (BENCH_QUICK=1)**: smaller counts than the issue asks; run `npm run bench` for the real figures.' : ''}

- Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'} × ${os.cpus().length} logical CPUs, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()} ${os.release()}
- Node ${process.version}, @aws-crypto/client-node 5, SQLite (better-sqlite3), convault's local KMS on loopback
- Date: ${new Date().toISOString().slice(0, 10)}; whole run ${r.seconds.toFixed(0)} s; load average (1 min) at the start ${r.loadAtStart.toFixed(1)}, at the end ${os.loadavg()[0]!.toFixed(1)} on ${os.cpus().length} CPUs — the machine is shared, so absolute figures move with that load and the ratios (cases measured side by side) are what to compare

## Secured data: throughput (${VALUE_BYTES}-byte values, one encrypt + one decrypt per operation)

| | what is measured | ops/s |
|---|---|---:|
| (a) | AES-256-GCM in \`node:crypto\` alone: random 96-bit nonce, 128-bit tag, no AAD | ${rate(r.a)} |
| (b₀) | for the breakdown of (b): the envelope code of \`src/crypto\` alone — \`sealValue\` + \`openValue\` with a fixed key, no cache, bytes in and out | ${rate(r.b0)} |
| (b) | convault's per-value work, called directly — **not** a service call and no database read: the conversation-key manager's cache lookup (\`peek\`: checked against a conversation key row read once before the run, a fresh copy per lookup, zeroed after use) and the value codec the service uses (\`sealAttribute\` / \`openAttribute\`: versioned envelope with AAD of format version, org, conversation, name; UTF-8 string ↔ bytes with the plaintext zeroed); one key lookup for the encrypt and one for the decrypt | ${rate(r.b)} |
| (b′) | the real service call, for scale: a whole \`SecuredDataService.replace\` + \`get\` of one attribute — SQLite transaction, key-row read and check, two hash-chained audit events | ${rate(r.bService)} |
| (c) | \`@aws-crypto/client-node\` with a raw AES keyring behind the caching materials manager, \`ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY\` (committing, non-signing — convault's Encrypt Data suite) | ${rate(r.c)} |
| (c′) | the same with the ESDK default \`ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY_ECDSA_P384\` (signing), for reference | ${rate(r.cSigning)} |

The six cases run in alternating 25 ms slices (${quick ? '0.7' : '2'} s per case per block, after a warm-up), so load from elsewhere on
the machine falls on all of them alike. The section runs ${ROUNDS} such blocks. The figures above and the ratios below all come from
**one block, block ${r.medianIndex + 1}** — the one with the median b/a — so every ratio can be recomputed from the figures shown. A verdict
is *met* or *missed* only if every block agrees; when the per-block range straddles the target it is *uncertain*.

| ratio (block ${r.medianIndex + 1}) | value | range over the ${ROUNDS} blocks | target | verdict |
|---|---:|---:|---:|---|
| b/a | ${r.bOverA.toFixed(2)} | ${span(r.bOverARange, 2)} | ≥ ${TARGETS.bOverA} | ${rangeVerdict(r.bOverARange, TARGETS.bOverA)} |
| b/c | ${r.bOverC.toFixed(1)} | ${span(r.bOverCRange, 1)} | ≥ ${TARGETS.bOverC} | ${rangeVerdict(r.bOverCRange, TARGETS.bOverC)} |
| c/c′ | ${(r.c.opsPerSecond / r.cSigning.opsPerSecond).toFixed(1)} | | (the non-signing suite's speed-up) | |
| b₀/a | ${b0OverA.toFixed(2)} | | (src/crypto's envelope code alone) | |
| b/b₀ | ${bOverB0.toFixed(2)} | | (what the cache lookups and strings keep of it) | |

| block | (a) | (b) | (b′) | (c) | (c′) | (b₀) | b/a | b/c |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
${r.rounds.map((m, i) => `| ${i + 1} | ${m.map((x) => rate(x)).join(' | ')} | ${(m[1]!.opsPerSecond / m[0]!.opsPerSecond).toFixed(2)} | ${(m[1]!.opsPerSecond / m[3]!.opsPerSecond).toFixed(1)} |`).join('\n')}

What (b) adds to (a): building the AAD (length-prefixed label, version, org id, conversation id,
name — with a well-formed-Unicode check of each, in one allocation), the envelope's version byte and layout, the
key-cache lookup (LRU bookkeeping, a copy of the key in its own allocation so an eviction can never
zero a key in use, the comparison with the stored key row, a zeroing afterwards), the all-zero-key
check, UTF-8 conversion and zeroing of the plaintext. (b₀) splits that: the envelope code of
\`src/crypto\` alone runs at b₀/a = ${b0OverA.toFixed(2)} of (a) — AAD building with a Unicode check of
each field, the envelope written into one buffer, the key checks — and
the per-value service code (two cache lookups, strings) keeps b/b₀ = ${bOverB0.toFixed(2)} of that. The machine is shared with
other work, which loads the blocks unevenly: the per-block table shows how far the ratios move within this run, and a
re-run can land elsewhere in (or outside) that range — which is why the verdicts look at the range, not at one number.${
    r.bOverARange.min >= TARGETS.bOverA
      ? ''
      : `

**b/a not met in every block** (block ${r.medianIndex + 1}: ${r.bOverA.toFixed(2)}, range ${span(r.bOverARange, 2)}, target ${TARGETS.bOverA}). Reason: most of the gap is the envelope
code of \`src/crypto\` itself (b₀/a above) — two AES-GCM contexts per round trip are the same as in (a), so what
remains is the AAD, the envelope layout and the checks — and the service layer adds the rest; the per-block
figures show how much of the miss is load from elsewhere on the machine.`
  }
What it saves against (c): the ESDK message format (header with the encryption context and the
encrypted data key, HKDF per message, key commitment, framing) and its stream machinery. (b′) shows
that in the API the database and the audit trail, not the cryptography, set the pace.

## Secured data: KMS calls (d)

| run | values written | values read | conversations | conversations per data key | windows | GenerateDataKey | Decrypt | all KMS calls | data keys | time |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
${[r.d, r.dWindows]
  .map(
    (x) =>
      `| ${x.label} | ${x.valuesWritten.toLocaleString('en-US')} | ${x.valuesRead.toLocaleString('en-US')} | ${x.conversations.toLocaleString('en-US')} | ${x.maxConversationsPerDataKey.toLocaleString('en-US')} | ${x.windows} | ${x.generateDataKey} | ${x.decrypt} | ${x.totalKmsCalls} | ${x.dataKeys} | ${x.seconds.toFixed(0)} s |`,
  )
  .join('\n')}

Target: ≤ ${TARGETS.gdkPerWindow} GenerateDataKey per data-key window, no KMS call per value or per conversation —
${verdict(dOk)} (${gdkPerWindow.toFixed(2)} GenerateDataKey per window).

Every value goes through \`SecuredDataService.replace\` / \`get\` (one \`PUT\` of 100 attributes per
conversation in the first run, one attribute per conversation in the second), in-process against
SQLite and the local KMS through \`@aws-sdk/client-kms\`; the counts are the KMS gateway's call metrics.
A data key window ends after \`CONVAULT_DATA_KEY_ROTATE_S\` (1 h) or \`CONVAULT_DATA_KEY_MAX_CONVERSATIONS\`
conversations, whichever comes first; these runs are much shorter than an hour, so the conversation
count decides. \`Decrypt\` calls appear only when a data key's plaintext left the cache
(\`CONVAULT_KEY_CACHE_MAX_AGE_S\`, 60 s): one per data key per minute of use at most — that re-check is
what makes a revoked CMK take effect within the max age.
`;
}

main().catch((err) => {
  process.stderr.write(`benchmark failed: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
