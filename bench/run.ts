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
const ROUNDS = quick ? 2 : 3;

function median(xs: number[]): number {
  const sorted = [...xs].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function medianMeasurement(ms: Measurement[]): Measurement {
  const opsPerSecond = median(ms.map((m) => m.opsPerSecond));
  return { name: ms[0]!.name, ops: ms.reduce((n, m) => n + m.ops, 0), seconds: ms.reduce((n, m) => n + m.seconds, 0), opsPerSecond };
}

async function main(): Promise<void> {
  const started = Date.now();
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
    // on all of them alike. Several such blocks; each figure is the median of its blocks, each ratio
    // the median of the per-block ratios.
    const rounds: Measurement[][] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const results = await measureInterleaved(cases, { sliceMs: 25, perCaseMs: quick ? 700 : 2_000 });
      rounds.push(results);
      log(`  block ${round + 1}/${ROUNDS}: ${results.map((m) => formatRate(m.opsPerSecond)).join(' / ')} ops/s`);
    }
    const [a, b, bService, c, cSigning, b0] = cases.map((_, i) => medianMeasurement(rounds.map((r) => r[i]!)));
    const bOverA = median(rounds.map((r) => r[1]!.opsPerSecond / r[0]!.opsPerSecond));
    const bOverC = median(rounds.map((r) => r[1]!.opsPerSecond / r[3]!.opsPerSecond));
    for (const m of [a!, b0!, b!, bService!, c!, cSigning!]) log(line(m));
    log(`\nb/a = ${bOverA.toFixed(2)} (target ≥ ${TARGETS.bOverA})   b/c = ${bOverC.toFixed(1)} (target ≥ ${TARGETS.bOverC})   c/c′ = ${(c!.opsPerSecond / cSigning!.opsPerSecond).toFixed(1)}`);

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

    const report = renderReport({ a: a!, b0: b0!, b: b!, bService: bService!, c: c!, cSigning: cSigning!, bOverA, bOverC, d, dWindows, rounds, seconds: (Date.now() - started) / 1000 });
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

function renderReport(r: {
  a: Measurement;
  b0: Measurement;
  b: Measurement;
  bService: Measurement;
  c: Measurement;
  cSigning: Measurement;
  bOverA: number;
  bOverC: number;
  d: KmsCallReport;
  dWindows: KmsCallReport;
  rounds: Measurement[][];
  seconds: number;
}): string {
  const rate = (m: Measurement) => formatRate(m.opsPerSecond);
  const b0OverA = median(r.rounds.map((m) => m[5]!.opsPerSecond / m[0]!.opsPerSecond));
  const bOverB0 = median(r.rounds.map((m) => m[1]!.opsPerSecond / m[5]!.opsPerSecond));
  const gdkPerWindow = Math.max(r.d.generateDataKey / r.d.windows, r.dWindows.generateDataKey / r.dWindows.windows);
  const dOk = gdkPerWindow <= TARGETS.gdkPerWindow;
  return `# Benchmarks

Generated by \`npm run bench\` (bench/run.ts) — do not edit by hand; run it again.${quick ? '\n\n> **Quick run (BENCH_QUICK=1)**: smaller counts than the issue asks; run `npm run bench` for the real figures.' : ''}

- Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'} × ${os.cpus().length} logical CPUs, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()} ${os.release()}
- Node ${process.version}, @aws-crypto/client-node 5, SQLite (better-sqlite3), convault's local KMS on loopback
- Date: ${new Date().toISOString().slice(0, 10)}; whole run ${r.seconds.toFixed(0)} s

## Secured data: throughput (${VALUE_BYTES}-byte values, one encrypt + one decrypt per operation)

| | what is measured | ops/s |
|---|---|---:|
| (a) | AES-256-GCM in \`node:crypto\` alone: random 96-bit nonce, 128-bit tag, no AAD | ${rate(r.a)} |
| (b₀) | for the breakdown of (b): the envelope code of \`src/crypto\` alone — \`sealValue\` + \`openValue\` with a fixed key, no cache, bytes in and out | ${rate(r.b0)} |
| (b) | convault's value path through the service layer, warm caches: conversation key from the conversation-key manager's cache (checked against the conversation's stored key row, a fresh copy per lookup, zeroed after use), versioned value envelope with AAD (format version, org, conversation, name), UTF-8 string ↔ bytes with the plaintext zeroed; one key lookup for the encrypt and one for the decrypt | ${rate(r.b)} |
| (b′) | for scale only: a whole \`PUT\` + \`GET\` of one attribute through the service — SQLite transaction, key-row check, two hash-chained audit events | ${rate(r.bService)} |
| (c) | \`@aws-crypto/client-node\` with a raw AES keyring behind the caching materials manager, \`ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY\` (committing, non-signing — convault's Encrypt Data suite) | ${rate(r.c)} |
| (c′) | the same with the ESDK default \`ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY_ECDSA_P384\` (signing), for reference | ${rate(r.cSigning)} |

The six cases run in alternating 25 ms slices (${quick ? '0.7' : '2'} s per case per block, after a warm-up), so load from elsewhere on\nthe machine falls on all of them alike; each figure is the median of ${ROUNDS} blocks, each ratio the median of the per-block ratios.\n\n| ratio | value | target | |
|---|---:|---:|---|
| b/a | ${r.bOverA.toFixed(2)} | ≥ ${TARGETS.bOverA} | ${verdict(r.bOverA >= TARGETS.bOverA)} |
| b/c | ${r.bOverC.toFixed(1)} | ≥ ${TARGETS.bOverC} | ${verdict(r.bOverC >= TARGETS.bOverC)} |
| c/c′ | ${(r.c.opsPerSecond / r.cSigning.opsPerSecond).toFixed(1)} | (the non-signing suite's speed-up) | |
| b₀/a | ${b0OverA.toFixed(2)} | (src/crypto's envelope code alone) | |
| b/b₀ | ${bOverB0.toFixed(2)} | (what the service layer keeps of it) | |

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
the service layer (two cache lookups, strings) keeps b/b₀ = ${bOverB0.toFixed(2)} of that. On this shared,
loaded machine the ratios move by ±0.1 between runs; the per-block figures are above.${
    r.bOverA >= TARGETS.bOverA
      ? ''
      : `

**b/a target missed** in this run (${r.bOverA.toFixed(2)} < ${TARGETS.bOverA}). Reason: most of the gap is the envelope
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
