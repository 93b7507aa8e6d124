import fs from 'node:fs';
import path from 'node:path';

/**
 * Summarizes a V8 `.cpuprofile` (node --cpu-prof) by where the time goes: each sample's self time
 * goes to the nearest frame that has a script (a native call counts for the JavaScript that made
 * it), grouped by library or convault folder. Idle time is left out.
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  hitCount?: number;
  children?: number[];
}

/** Groups by script URL, first match wins; src/store means something else on each database. */
const groupsFor = (database: 'sqlite' | 'postgres'): Array<[RegExp, string]> => [
  [/node_modules\/better-sqlite3\//, 'better-sqlite3 (SQLite)'],
  [/node_modules\/pg(-[a-z]+)?\//, 'pg (PostgreSQL client)'],
  [/node_modules\/kysely\//, 'Kysely (building and compiling queries)'],
  [/node_modules\/(fastify|@fastify|find-my-way|avvio|fast-json-stringify|fast-uri|ajv|light-my-request|secure-json-parse|fast-decode-uri-component|toad-cache)/, 'Fastify (routing, validation, JSON)'],
  [/node_modules\/(pino|sonic-boom|thread-stream)/, 'logging (pino)'],
  [/node_modules\/(@aws-sdk|@smithy|@aws-crypto)\//, 'AWS SDK'],
  [/\/src\/crypto\//, 'convault src/crypto (AES-GCM, envelopes, key caches)'],
  [/\/src\/services\/audit\//, 'convault audit'],
  // On SQLite the statement cache's wrapper makes every better-sqlite3 call: this is where SQLite's own work
  // shows. On PostgreSQL the database works in its own process; src/store only hands queries to pg.
  [/\/src\/store\//, database === 'sqlite' ? "SQLite's work (native calls made through src/store's statement cache)" : 'convault src/store (statement cache, handing queries to pg)'],
  [/\/src\/localkms\//, 'convault local KMS'],
  [/\/src\//, 'convault other (services, routes)'],
  [/^node:/, 'Node.js core (HTTP, net, streams, crypto bindings)'],
];

export function summarizeProfile(file: string, database: 'sqlite' | 'postgres' = 'sqlite'): Array<{ group: string; share: number }> {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as { nodes: ProfileNode[] };
  const groups = groupsFor(database);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const totals = new Map<string, number>();
  let busy = 0;
  for (const n of profile.nodes) {
    const hits = n.hitCount ?? 0;
    if (!hits) continue;
    const name = n.callFrame.functionName;
    let group: string;
    if (name === '(idle)') continue;
    if (name === '(garbage collector)') group = 'garbage collection';
    else if (name === '(program)') group = 'V8 / native, not attributed';
    else {
      let frame: ProfileNode | undefined = n;
      while (frame && !frame.callFrame.url) frame = byId.get(parent.get(frame.id) ?? -1);
      const url = frame?.callFrame.url ?? '';
      group = groups.find(([re]) => re.test(url))?.[1] ?? (url ? 'other libraries' : 'V8 / native, not attributed');
    }
    totals.set(group, (totals.get(group) ?? 0) + hits);
    busy += hits;
  }
  return [...totals].map(([group, hits]) => ({ group, share: hits / busy })).sort((a, b) => b.share - a.share);
}

export function newestProfile(dir: string): string | undefined {
  // Node writes one profile per thread, named CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile: the
  // main thread (id 0) serves the requests; a worker (the SQLite checkpointer) writes its own.
  const files = fs.readdirSync(dir).filter((f) => /\.0\.\d+\.cpuprofile$/.test(f));
  return files.length ? path.join(dir, files.sort().pop()!) : undefined;
}
