import { randomBytes } from 'node:crypto';
import autocannon from 'autocannon';

/**
 * The load generator of bench/http.ts, in a process of its own: autocannon with N connections for
 * D seconds against one route. `[<id>]` in the path becomes a new conversation id per request;
 * the bearer tokens are used in turn (one token: one organization; 16 tokens: 16 organizations).
 * Prints one JSON line: requests/s, latency percentiles (ms), non-2xx answers and errors.
 *   node dist/bench/http-load.js '{"url":…,"method":"PUT","path":…,"tokens":[…],"body":…,"connections":16,"seconds":5}'
 */

export interface LoadSpec {
  url: string;
  method: 'GET' | 'PUT';
  path: string;
  tokens: string[];
  body?: string;
  connections: number;
  seconds: number;
}

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  max: number;
  requests: number;
  non2xx: number;
  errors: number;
}

const spec = JSON.parse(process.argv[2]!) as LoadSpec;
const prefix = randomBytes(4).toString('hex');
let n = 0;
const result = await autocannon({
  url: spec.url,
  connections: spec.connections,
  duration: spec.seconds,
  requests: [
    {
      method: spec.method,
      path: spec.path,
      headers: { 'content-type': 'application/json' },
      body: spec.body,
      setupRequest: (req) => {
        const i = n++;
        return {
          ...req,
          path: spec.path.replace('[<id>]', `${prefix}-${i.toString(36)}`),
          headers: { ...req.headers, authorization: `Bearer ${spec.tokens[i % spec.tokens.length]}` },
        };
      },
    },
  ],
});
const out: LoadResult = {
  rps: result.requests.total / spec.seconds,
  p50: result.latency.p50,
  p99: result.latency.p99,
  max: result.latency.max,
  requests: result.requests.total,
  non2xx: result.non2xx,
  errors: result.errors + result.timeouts,
};
process.stdout.write(JSON.stringify(out) + '\n');
