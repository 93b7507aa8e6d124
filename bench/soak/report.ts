import fs from 'node:fs';

/** The soak's figures against its targets, printed and written to docs/RELIABILITY.md. */

export interface SoakReport {
  seconds: number;
  workers: number;
  orgs: number;
  conversations: number;
  phases: Array<{ name: string; from: number; to: number }>;
  samples: Array<{ t: number; node: number; op: string; status: number; ms: number; shapeOk: boolean; retryAfter: boolean; why?: string }>;
  faults: Array<{ name: string; from: number; to: number; note: string }>;
  wrongReads: string[];
  lost: number;
  lostDetail: string[];
  checked: number;
  rotation: { status: string; detail: string; job: string };
  chains: Array<{ orgId: string; ok: boolean; count: number }>;
  nodes: Array<{
    name: string;
    usage: Array<{ t: number; rss: number; fds: number; pid: number }>;
    crashes: Array<{ t: number; output: string }>;
    /** RSS and open fds with no traffic: before it started, and once it was over and idle connections had closed. */
    rest: { before?: { rss: number; fds: number; breakdown: Record<string, number> }; after?: { rss: number; fds: number; breakdown: Record<string, number> } };
    /** Memory after a full garbage collection (bench/soak/live-heap.ts): once warm, and after the traffic. */
    live: Array<{ at: 'start' | 'warm' | 'after'; t: number; pid: number } & ({ heapUsed: number; rss: number } | { error: string })>;
  }>;
  machine: string;
  /** Node settings that differ from the defaults, as `NAME=value`. */
  nodeSettings: string[];
  load: { start: number; max: number; end: number };
}

const RECOVERY_ALLOWANCE_S = 5;
/** Connections a node's PostgreSQL pool may open (src/store/database.ts): fds it may hold at rest after use. */
const DB_POOL_SIZE = 10;
const MB = 2 ** 20;

/** Growth of the heap kept after a full collection, when the same process was measured warm and after the run. */
function liveGrowth(live: SoakReport['nodes'][number]['live']): { judged: true; warm: number; growth: number } | { judged: false; why: string } {
  const first = live.find((l) => l.at === 'warm');
  const last = live.find((l) => l.at === 'after');
  if (!first || !last) return { judged: false, why: 'not measured' };
  if ('error' in first || 'error' in last) return { judged: false, why: `not measured (${'error' in first ? first.error : 'error' in last ? last.error : ''})` };
  if (first.pid !== last.pid) return { judged: false, why: 'restarted in between' };
  return { judged: true, warm: first.heapUsed, growth: last.heapUsed - first.heapUsed };
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** A request that failed because of a fault: no answer, 5xx, or 424 (the customer key could not be used). */
const failed = (status: number) => status === 0 || status >= 500 || status === 424;

export function writeReliabilityReport(r: SoakReport, file: string, print: (line: string) => void): number {
  const lines: string[] = [];
  const out = (line = '') => lines.push(line);

  // Fault windows: from the fault's start until RECOVERY_ALLOWANCE_S after its end.
  const windows = r.faults.map((f) => ({ ...f, until: f.to + RECOVERY_ALLOWANCE_S }));
  // A request is in a fault window when it was in flight at any moment of it: one sent just before
  // a fault began can be cut by it.
  const inWindow = (x: { t: number; ms: number }) => windows.some((w) => x.t + x.ms / 1000 >= w.from && x.t < w.until);
  const recovery = r.faults.map((f) => {
    // Up to 15 s after the fault, but never into the next fault.
    const next = Math.min(...r.faults.filter((g) => g.from > f.from).map((g) => g.from), Infinity);
    // A request counts where its answer (or failure) came, so one cut by the next fault is that fault's.
    const after = r.samples.filter((x) => failed(x.status) && x.t >= f.to && x.t + x.ms / 1000 < Math.min(f.to + 15, next));
    return { name: f.name, seconds: after.length ? Math.max(...after.map((x) => x.t)) - f.to : 0 };
  });
  const outside5xx = r.samples.filter((x) => x.status >= 500 && !inWindow(x));
  const duringFaults = r.samples.filter((x) => inWindow(x) && x.status >= 400 && x.status !== 404);
  const badFaultErrors = duringFaults.filter((x) => !(x.status === 503 || x.status === 424) || !x.shapeOk || (x.status === 503 && !x.retryAfter));
  const noAnswer = r.samples.filter((x) => x.status === 0);
  const noAnswerOutside = noAnswer.filter((x) => !inWindow(x));
  const badShape = r.samples.filter((x) => x.status >= 400 && !x.shapeOk && x.status !== 0);

  const nodeFigures = r.nodes.map((n) => {
    const rss = n.usage.map((u) => u.rss);
    const fds = n.usage.map((u) => u.fds);
    // Growth is judged on the process that ran longest without a restart, after a 10 s warm-up: the
    // highest value of the second half of its run against the highest of the first half. A leak
    // raises it; a process whose heap and pools have reached their size leaves it near 0.
    const byPid = new Map<number, typeof n.usage>();
    for (const u of n.usage) byPid.set(u.pid, [...(byPid.get(u.pid) ?? []), u]);
    const longest = [...byPid.values()].sort((a, b) => b.length - a.length)[0] ?? [];
    const warm = longest.filter((u) => u.t >= (longest[0]?.t ?? 0) + 10);
    const firstHalf = warm.slice(0, Math.floor(warm.length / 2));
    const secondHalf = warm.slice(Math.floor(warm.length / 2));
    const halves = (pick: (u: (typeof warm)[number]) => number) =>
      firstHalf.length && secondHalf.length ? { first: Math.max(...firstHalf.map(pick)), growth: Math.max(...secondHalf.map(pick)) - Math.max(...firstHalf.map(pick)) } : { first: NaN, growth: 0 };
    const rssHalves = halves((u) => u.rss);
    const fdHalves = halves((u) => u.fds);
    // Every 10 s of the run (the first sample of each), to see the shape.
    const timeline = n.usage.filter((u, i, all) => i === 0 || Math.floor(u.t / 10) !== Math.floor(all[i - 1]!.t / 10));
    return {
      name: n.name,
      rssStart: rss[0] ?? NaN,
      rssPeak: Math.max(...rss),
      rssEnd: rss.at(-1) ?? NaN,
      rssFirstHalfPeak: rssHalves.first,
      rssGrowth: rssHalves.growth,
      fdsStart: fds[0] ?? NaN,
      fdsMax: Math.max(...fds),
      fdsEnd: fds.at(-1) ?? NaN,
      fdsGrowth: fdHalves.growth,
      timeline,
      processes: byPid.size,
      crashes: n.crashes,
    };
  });

  const targets = [
    { what: 'acknowledged writes lost', value: r.lost, target: '0', ok: r.lost === 0 },
    { what: 'wrong reads', value: r.wrongReads.length, target: '0', ok: r.wrongReads.length === 0 },
    { what: '5xx outside fault windows', value: outside5xx.length, target: '0', ok: outside5xx.length === 0 },
    { what: 'errors during faults not 503/424 in the error shape (503 with Retry-After)', value: badFaultErrors.length, target: '0', ok: badFaultErrors.length === 0 },
    { what: 'error answers not in the error shape (whole run)', value: badShape.length, target: '0', ok: badShape.length === 0 },
    ...recovery.map((x) => ({ what: `recovery after ${x.name} (s)`, value: Number(x.seconds.toFixed(1)), target: '≤ 5', ok: x.seconds <= 5 })),
    ...nodeFigures.map((n) => ({ what: `${n.name} peak RSS (MB)`, value: Math.round(n.rssPeak / MB), target: '< 300', ok: n.rssPeak < 300 * MB })),
    ...r.nodes.map((n) => {
      const live = liveGrowth(n.live);
      return {
        what: `${n.name} live heap growth, warm → after the run (MB)`,
        value: live.judged ? Number((live.growth / MB).toFixed(1)) : live.why,
        target: '≤ 10 % of warm',
        // A node restarted in between has no comparable pair: its figures are listed below, not judged.
        ok: !live.judged || live.growth <= 0.1 * live.warm,
      };
    }),
    ...r.nodes.map((n) => {
      // Files, pipes, handles and sockets to anything but the database: what a leak would grow.
      const own = (b?: Record<string, number>) => (b ? b.other! + b.otherSockets! + b.kms! : NaN);
      const grew = own(n.rest.after?.breakdown) - own(n.rest.before?.breakdown);
      return { what: `${n.name} open fds at rest, after the run over before (database pool and clients' connections apart)`, value: grew, target: '≤ 2', ok: grew <= 2 };
    }),
    ...r.nodes.map((n) => {
      const db = n.rest.after?.breakdown.database ?? NaN;
      return { what: `${n.name} database connections at rest after the run`, value: db, target: `≤ ${DB_POOL_SIZE} (the pool)`, ok: db <= DB_POOL_SIZE };
    }),
    ...nodeFigures.map((n) => ({ what: `${n.name} unexpected exits`, value: n.crashes.length, target: '0', ok: n.crashes.length === 0 })),
    {
      what: 'key rotation saved, its rewrap job succeeded',
      value: `${r.rotation.status}; job ${r.rotation.job}`,
      target: 'save 200, job succeeded, target the rotated key',
      ok: r.rotation.status.startsWith('save 200,') && r.rotation.job.startsWith('succeeded') && r.rotation.job.endsWith('target the rotated key'),
    },
    { what: 'audit chains verified', value: `${r.chains.filter((c) => c.ok).length}/${r.chains.length}`, target: 'all', ok: r.chains.every((c) => c.ok) },
  ];
  const passed = targets.every((t) => t.ok);

  out('# Reliability: the soak test');
  out();
  out('`npm run soak` (bench/soak.ts; not part of `npm test`) starts a standalone local KMS (`convault kms serve`), two');
  out('`convault serve` nodes on one PostgreSQL database (a cluster of the soak\'s own, which one fault restarts) and a client that sends mixed traffic to');
  out('both nodes, round robin. During the run it injects faults one after another; afterwards it reads back every');
  out('acknowledged write from the node that did not acknowledge it, and verifies every organization\'s audit chain.');
  out('This file is rewritten by each run; the figures below are from the last one.');
  out();
  out(`- Machine: ${r.machine}; 1-minute load average during the traffic ${r.load.start.toFixed(1)} at the start, ${r.load.max.toFixed(1)} at most, ${r.load.end.toFixed(1)} at the end`);
  out(`  (above the number of cores, processes waited for one; the soak alone keeps both busy). Traffic: ${r.seconds} s, ${r.workers} concurrent clients, ${r.orgs} organizations, ${r.conversations} conversations.`);
  out('- Mix: 45 % PUT (new or existing conversation), 15 % PATCH, 30 % GET, 10 % Encrypt Data then Decrypt Data on the other node;');
  out('  one key rotation of an organization followed by a rewrap job in the middle.');
  out(`- Node settings other than the defaults: ${r.nodeSettings.map((x) => `\`${x}\``).join(', ')}.`);
  out('- Each conversation is written by one client only, one request at a time, so its content is known exactly');
  out('  (bench/soak/conversation-model.ts): a write whose outcome is unknown (no answer, or a 5xx from the database) leaves');
  out('  both states possible, and the conversation is only read until a read settles it; no possibility is ever dropped.');
  out(`- Fault windows run from a fault\'s start to ${RECOVERY_ALLOWANCE_S} s after its end; a request belongs to one if it was in flight during it.`);
  out('  Recovery time: from the end of the fault to the last failed request (no answer, 5xx, 424) answered within 15 s after it');
  out('  (and before the next fault).');
  out();
  out(`## Result: ${passed ? 'all targets met' : 'targets NOT met'}`);
  out();
  out('| Figure | Value | Target | |');
  out('| --- | ---: | --- | --- |');
  for (const t of targets) out(`| ${t.what} | ${t.value} | ${t.target} | ${t.ok ? 'ok' : '**missed**'} |`);
  out();
  out('## Faults');
  out();
  out('| Fault | From (s) | To (s) | What |');
  out('| --- | ---: | ---: | --- |');
  for (const f of r.faults) out(`| ${f.name} | ${f.from.toFixed(1)} | ${f.to.toFixed(1)} | ${f.note} |`);
  out(`| key rotation + rewrap | | | ${r.rotation.status}; job ${r.rotation.job} |`);
  out();
  out('## Requests by phase');
  out();
  out('| Phase | Seconds | Requests | Statuses | No answer | p50 ms | p99 ms |');
  out('| --- | --- | ---: | --- | ---: | ---: | ---: |');
  for (const p of r.phases) {
    const xs = r.samples.filter((x) => x.t >= p.from && x.t < p.to);
    const counts = new Map<number, number>();
    for (const x of xs) if (x.status !== 0) counts.set(x.status, (counts.get(x.status) ?? 0) + 1);
    const statuses = [...counts].sort(([a], [b]) => a - b).map(([st, n]) => `${st}: ${n}`).join(', ');
    const answered = xs.filter((x) => x.status !== 0).map((x) => x.ms);
    out(`| ${p.name} | ${p.from.toFixed(0)}–${Math.min(p.to, r.seconds).toFixed(0)} | ${xs.length} | ${statuses} | ${xs.length - answered.length} | ${percentile(answered, 50)} | ${percentile(answered, 99)} |`);
  }
  out();
  out('(404 answers are GETs of conversations not written yet. "No answer": the connection was refused or reset, e.g. while a node was down;');
  out(`${noAnswer.length} in all, ${noAnswerOutside.length} outside fault windows.)`);
  out();
  const tally = (xs: typeof r.samples, label: (x: (typeof r.samples)[number]) => string) => {
    const counts = new Map<string, number>();
    for (const x of xs) counts.set(label(x), (counts.get(label(x)) ?? 0) + 1);
    return [...counts].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, n]) => `${k}: ${n}`).join(', ') || 'none';
  };
  out(`- Error answers by status and code: ${tally(r.samples.filter((x) => x.status >= 400 && x.status !== 404), (x) => `${x.status} ${x.why ?? ''}`)}.`);
  out(`- No answer, by cause: ${tally(noAnswer, (x) => x.why ?? 'unknown')}.`);
  out();
  out('## Nodes');
  out();
  out('| Node | RSS start / peak / end (MB) | RSS growth, 2nd half over 1st (MB) | Open fds start / max / end | fd growth, 2nd half over 1st | At rest before / after: RSS (MB), fds | Processes |');
  out('| --- | --- | ---: | --- | ---: | --- | ---: |');
  nodeFigures.forEach((n, i) => {
    const rest = r.nodes[i]!.rest;
    const restText = `${Math.round((rest.before?.rss ?? NaN) / MB)} / ${Math.round((rest.after?.rss ?? NaN) / MB)}, ${rest.before?.fds ?? '?'} / ${rest.after?.fds ?? '?'}`;
    out(`| ${n.name} | ${Math.round(n.rssStart / MB)} / ${Math.round(n.rssPeak / MB)} / ${Math.round(n.rssEnd / MB)} | ${(n.rssGrowth / MB).toFixed(1)} | ${n.fdsStart} / ${n.fdsMax} / ${n.fdsEnd} | ${n.fdsGrowth} | ${restText} | ${n.processes} |`);
  });
  out();
  out('RSS rises between V8\'s major collections, which under this load come about once a minute, so a 60 s run sees one rising');
  out('slope whether anything leaks or not. Growth is therefore judged on the live heap: the soak asks each node for a full');
  out('collection through its inspector (bench/soak/live-heap.ts) once warm and again after the traffic, and compares the heap it');
  out('keeps. Live memory after a full collection (heap used / RSS, MB):');
  out();
  for (const n of r.nodes) {
    out(`- ${n.name}: ${n.live.map((l) => `${l.at === 'start' ? 'before the traffic' : `${l.at}, ${l.t.toFixed(0)} s`}, pid ${l.pid}: ${'error' in l ? l.error : `${(l.heapUsed / MB).toFixed(1)} / ${Math.round(l.rss / MB)}`}`).join('; ') || 'not measured'}`);
  }
  out();
  out('Open fds at rest, before the traffic → after it, by what they are:');
  out();
  for (const n of r.nodes) {
    const fmt = (b?: Record<string, number>) => (b ? Object.entries(b).map(([k, v]) => `${k} ${v}`).join(', ') : 'not measured');
    out(`- ${n.name}: ${fmt(n.rest.before?.breakdown)} → ${fmt(n.rest.after?.breakdown)}`);
  }
  out();
  out('RSS every 10 s (MB, open fds in brackets; a restart starts a new process):');
  out();
  for (const n of nodeFigures) out(`- ${n.name}: ${n.timeline.map((u) => `${u.t.toFixed(0)} s ${Math.round(u.rss / MB)} (${u.fds})`).join(', ')}`);
  for (const n of nodeFigures) {
    for (const c of n.crashes) {
      out();
      out(`**${n.name} exited unexpectedly at ${c.t.toFixed(1)} s** (restarted by the soak, as a supervisor would). Last output:`);
      out('```');
      out(c.output.split('\n').filter(Boolean).slice(-12).join('\n'));
      out('```');
    }
  }
  out();
  out('## Read-back and audit');
  out();
  out(`- ${r.checked} conversations with acknowledged writes read back from the other node: ${r.lost} lost.`);
  for (const d of r.lostDetail) out(`  - ${d}`);
  out(`- Wrong reads during the run: ${r.wrongReads.length}.`);
  for (const d of r.wrongReads.slice(0, 10)) out(`  - ${d}`);
  out(`- Audit chains: ${r.chains.map((c) => `${c.ok ? 'intact' : 'BROKEN'} (${c.count} events)`).join(', ')}.`);
  if (badFaultErrors.length) {
    const kinds = new Map<string, number>();
    for (const x of badFaultErrors) {
      const k = `${x.op} ${x.status} ${x.why ?? ''}${x.shapeOk ? '' : ' (not the error shape)'}${x.status === 503 && !x.retryAfter ? ' (no Retry-After)' : ''}`;
      kinds.set(k, (kinds.get(k) ?? 0) + 1);
    }
    out(`- Errors during faults that were not 503/424 in the error shape: ${[...kinds].map(([k, n]) => `${k}: ${n}`).join(', ')}.`);
  }
  if (outside5xx.length) out(`- 5xx outside fault windows at: ${outside5xx.slice(0, 20).map((x) => `${x.t.toFixed(1)} s ${x.op} ${x.status}`).join(', ')}.`);

  const text = lines.join('\n') + '\n';
  fs.writeFileSync(file, text);
  for (const line of lines) print(line);
  return passed ? 0 : 1;
}
