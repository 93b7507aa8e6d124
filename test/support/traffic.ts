import { randomBytes } from 'node:crypto';
import { ConversationModel, patched, type Data, type State } from '../../bench/soak/conversation-model.js';

/**
 * Mixed secured-data traffic for the fault cases (the soak's model, in short): each conversation
 * is written by one worker, so what it must hold is known; writes without an answer leave both
 * outcomes possible until a read settles them.
 */

export interface TrafficSample {
  at: number;
  status: number; // 0: no answer
  body: any;
  retryAfter: string | null;
}

export interface Traffic {
  samples: TrafficSample[];
  wrongReads: string[];
  models: Map<string, ConversationModel>;
  /** Reads every conversation with an acknowledged write from `baseUrl`; returns those not as acknowledged. */
  lostWrites(baseUrl: string): Promise<string[]>;
}

export async function runTraffic(opts: {
  urls: () => string[];
  token: string;
  conversations: number;
  workers: number;
  ms: number;
  prefix: string;
  /** Filled as answers arrive (pass one to watch the traffic while it runs). */
  samples?: TrafficSample[];
}): Promise<Traffic> {
  const models = new Map<string, ConversationModel>();
  const ids = Array.from({ length: opts.conversations }, (_, i) => `${opts.prefix}-${i}`);
  for (const id of ids) models.set(id, new ConversationModel());
  const samples: TrafficSample[] = opts.samples ?? [];
  const wrongReads: string[] = [];
  const started = Date.now();
  let rr = 0;

  const call = async (base: string, method: string, path: string, body?: unknown) => {
    const at = Date.now() - started;
    try {
      const res = await fetch(base + path, {
        method,
        headers: { authorization: `Bearer ${opts.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(8000),
      });
      const text = await res.text();
      const parsed = text ? JSON.parse(text) : undefined;
      samples.push({ at, status: res.status, body: parsed, retryAfter: res.headers.get('retry-after') });
      return { status: res.status, body: parsed };
    } catch {
      samples.push({ at, status: 0, body: undefined, retryAfter: null });
      return { status: 0, body: undefined };
    }
  };

  const worker = async (w: number) => {
    const mine = ids.filter((_, i) => i % opts.workers === w);
    while (Date.now() - started < opts.ms) {
      const id = mine[Math.floor(Math.random() * mine.length)]!;
      const model = models.get(id)!;
      const urls = opts.urls();
      const node = rr++ % urls.length;
      const path = `/api/v2/conversations/${id}/secureddata`;
      const r = Math.random();
      if (r < 0.5) {
        const data: Data = { v: randomBytes(4).toString('hex') };
        const res = await call(urls[node]!, 'PUT', path, { data });
        if (res.status === 200) model.acknowledged(() => data, node);
        else if (res.status === 0 || res.status >= 500) model.uncertain(() => data);
      } else if (r < 0.65) {
        const patch = { p: randomBytes(4).toString('hex') };
        const res = await call(urls[node]!, 'PATCH', path, { data: patch });
        if (res.status === 200) model.acknowledged((s) => patched(s, patch), node);
        else if (res.status === 0 || res.status >= 500) model.uncertain((s) => patched(s, patch));
      } else {
        const res = await call(urls[node]!, 'GET', path);
        const seen: State | undefined = res.status === 200 ? res.body.data : res.status === 404 ? null : undefined;
        if (seen !== undefined && !model.observed(seen)) wrongReads.push(`${id}: ${JSON.stringify(seen)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: opts.workers }, (_, w) => worker(w)));

  return {
    samples,
    wrongReads,
    models,
    async lostWrites(baseUrl) {
      const lost: string[] = [];
      for (const [id, model] of models) {
        if (model.acknowledgedWrites === 0) continue;
        const res = await fetch(`${baseUrl}/api/v2/conversations/${id}/secureddata`, { headers: { authorization: `Bearer ${opts.token}` } });
        const seen: State | undefined = res.status === 200 ? ((await res.json()) as { data: Data }).data : res.status === 404 ? null : undefined;
        if (seen === undefined || !model.observed(seen)) lost.push(`${id}: ${res.status} ${JSON.stringify(seen)}`);
      }
      return lost;
    },
  };
}
