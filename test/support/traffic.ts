import { randomBytes } from 'node:crypto';
import { classifyWrite, connectionRefused, ConversationModel, patched, type Data, type State } from '../../bench/soak/conversation-model.js';

/**
 * Mixed secured-data traffic for the fault cases (the soak's model, in short): each conversation
 * is written by one worker, one request at a time, so what it must hold is known exactly
 * (bench/soak/conversation-model.ts says how each answer counts). A conversation whose last write
 * has an unknown outcome is read, not written, until a read settles it.
 */

export interface TrafficSample {
  at: number;
  status: number; // 0: no answer
  body: any;
  retryAfter: string | null;
}

export interface Traffic {
  samples: TrafficSample[];
  /** Each with the conversation's last requests and answers, to see why. */
  wrongReads: string[];
  models: Map<string, ConversationModel>;
  /** Reads every conversation with an acknowledged write from `baseUrl`; returns those not as acknowledged. */
  lostWrites(baseUrl: string): Promise<string[]>;
}

/** Requests kept per conversation for a failure message. */
const HISTORY = 20;

export async function runTraffic(opts: {
  urls: () => string[];
  token: string;
  conversations: number;
  workers: number;
  ms: number;
  prefix: string;
  /** Filled as answers arrive (pass one to watch the traffic while it runs). */
  samples?: TrafficSample[];
  /** Runs on past `ms` while this says so (e.g. until a restarted node has served a while). */
  longer?: () => boolean;
}): Promise<Traffic> {
  const models = new Map<string, ConversationModel>();
  const ids = Array.from({ length: opts.conversations }, (_, i) => `${opts.prefix}-${i}`);
  for (const id of ids) models.set(id, new ConversationModel());
  const samples: TrafficSample[] = opts.samples ?? [];
  const wrongReads: string[] = [];
  const history = new Map<string, string[]>();
  const started = Date.now();
  const note = (id: string, from: number, line: string) => {
    const h = history.get(id) ?? [];
    h.push(`${from}-${Date.now() - started} ms ${line}`);
    if (h.length > HISTORY) h.shift();
    history.set(id, h);
  };
  const explain = (id: string, line: string) => `${id}: ${line}\n    ${(history.get(id) ?? []).join('\n    ')}`;
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
      return { at, status: res.status, body: parsed, refused: false };
    } catch (err) {
      samples.push({ at, status: 0, body: undefined, retryAfter: null });
      return { at, status: 0, body: undefined, refused: connectionRefused(err) };
    }
  };
  const answer = (res: { status: number; body: any; refused: boolean }) =>
    `${res.status}${res.refused ? ' (refused)' : ''} ${res.status >= 400 ? String(res.body?.code) : res.status === 200 ? JSON.stringify(res.body?.data ?? res.body?.attributeNames) : ''}`;

  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

  const worker = async (w: number) => {
    const mine = ids.filter((_, i) => i % opts.workers === w);
    while (Date.now() - started < opts.ms || opts.longer?.()) {
      const id = mine[Math.floor(Math.random() * mine.length)]!;
      const model = models.get(id)!;
      const urls = opts.urls();
      const node = rr++ % urls.length;
      const path = `/api/v2/conversations/${id}/secureddata`;
      const r = Math.random();
      let status: number;
      if (model.writable && r < 0.5) {
        const data: Data = { v: randomBytes(4).toString('hex') };
        const res = await call(urls[node]!, 'PUT', path, { data });
        const outcome = classifyWrite({ status: res.status, code: res.body?.code, refused: res.refused });
        note(id, res.at, `PUT ${JSON.stringify(data)} -> ${answer(res)}: ${outcome}`);
        model.wrote(outcome, () => data, node);
        status = res.status;
      } else if (model.writable && r < 0.65) {
        const patch = { p: randomBytes(4).toString('hex') };
        const res = await call(urls[node]!, 'PATCH', path, { data: patch });
        const outcome = classifyWrite({ status: res.status, code: res.body?.code, refused: res.refused });
        note(id, res.at, `PATCH ${JSON.stringify(patch)} -> ${answer(res)}: ${outcome}`);
        model.wrote(outcome, (s) => patched(s, patch), node);
        status = res.status;
      } else {
        const res = await call(urls[node]!, 'GET', path);
        note(id, res.at, `GET -> ${answer(res)}`);
        status = res.status;
        const seen: State | undefined = res.status === 200 ? res.body.data : res.status === 404 ? null : undefined;
        if (seen !== undefined && !model.observed(seen)) wrongReads.push(explain(id, `read ${JSON.stringify(seen)}, possible ${JSON.stringify(model.candidates)}`));
      }
      // Nobody listening (a node killed and not yet back): do not spin.
      if (status === 0) await pause(20);
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
        if (seen === undefined || !model.observed(seen)) lost.push(explain(id, `final read ${res.status} ${JSON.stringify(seen)}, possible ${JSON.stringify(model.candidates)}`));
      }
      return lost;
    },
  };
}
