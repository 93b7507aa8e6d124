/** Tiny timing harness: run an operation for a fixed time after a warm-up, report operations per second. */

export interface Measurement {
  name: string;
  ops: number;
  seconds: number;
  opsPerSecond: number;
}

export interface MeasureOptions {
  warmupMs?: number;
  durationMs?: number;
}

/** Runs `op` back to back (awaiting each) for `durationMs` after `warmupMs`. Checks the clock every `batch` ops. */
export async function measure(name: string, op: () => unknown, opts: MeasureOptions = {}): Promise<Measurement> {
  const warmupMs = opts.warmupMs ?? 500;
  const durationMs = opts.durationMs ?? 2_000;
  const first = op();
  const isAsync = first instanceof Promise;
  await first;
  const batch = isAsync ? 16 : 256;
  const runFor = async (ms: number): Promise<{ ops: number; ns: bigint }> => {
    const start = process.hrtime.bigint();
    const end = start + BigInt(ms) * 1_000_000n;
    let ops = 0;
    let now = start;
    while (now < end) {
      if (isAsync) for (let i = 0; i < batch; i++) await op();
      else for (let i = 0; i < batch; i++) op();
      ops += batch;
      now = process.hrtime.bigint();
    }
    return { ops, ns: now - start };
  };
  await runFor(warmupMs);
  const { ops, ns } = await runFor(durationMs);
  const seconds = Number(ns) / 1e9;
  return { name, ops, seconds, opsPerSecond: ops / seconds };
}

export function formatRate(opsPerSecond: number): string {
  return Math.round(opsPerSecond).toLocaleString('en-US');
}

/**
 * Measures several operations in short alternating time slices (a, b, c, a, b, c, …) until each has
 * run for `perCaseMs`, so load from elsewhere on the machine falls on all of them alike and ratios
 * between them stay meaningful on a busy machine. Each operation runs back to back within its slice.
 */
export async function measureInterleaved(
  cases: ReadonlyArray<{ name: string; op: () => unknown }>,
  opts: { sliceMs?: number; perCaseMs?: number; warmupMs?: number } = {},
): Promise<Measurement[]> {
  const sliceNs = BigInt(opts.sliceMs ?? 25) * 1_000_000n;
  const perCaseNs = BigInt(opts.perCaseMs ?? 2_500) * 1_000_000n;
  const totals = cases.map(() => ({ ops: 0, ns: 0n }));
  const asyncFlags: boolean[] = [];
  for (const c of cases) {
    const first = c.op();
    asyncFlags.push(first instanceof Promise);
    await first;
  }
  const slice = async (i: number, limitNs: bigint): Promise<{ ops: number; ns: bigint }> => {
    const op = cases[i]!.op;
    const start = process.hrtime.bigint();
    const end = start + limitNs;
    let ops = 0;
    let now = start;
    while (now < end) {
      if (asyncFlags[i]) await op();
      else for (let k = 0; k < 32; k++) op();
      ops += asyncFlags[i] ? 1 : 32;
      now = process.hrtime.bigint();
    }
    return { ops, ns: now - start };
  };
  const warmupNs = BigInt(opts.warmupMs ?? 300) * 1_000_000n;
  for (let i = 0; i < cases.length; i++) await slice(i, warmupNs);
  while (totals.some((t) => t.ns < perCaseNs)) {
    for (let i = 0; i < cases.length; i++) {
      if (totals[i]!.ns >= perCaseNs) continue;
      const { ops, ns } = await slice(i, sliceNs);
      totals[i]!.ops += ops;
      totals[i]!.ns += ns;
    }
  }
  return cases.map((c, i) => {
    const seconds = Number(totals[i]!.ns) / 1e9;
    return { name: c.name, ops: totals[i]!.ops, seconds, opsPerSecond: totals[i]!.ops / seconds };
  });
}
