import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/runtime.js';

/** Errors the framework or Node's HTTP parser raise are answered in the one error shape too. */

function expectErrorBody(body: any, status: number) {
  expect(body).toMatchObject({ status, code: expect.any(String), message: expect.any(String), contextId: expect.any(String) });
  expect(Object.keys(body).every((k) => ['message', 'code', 'status', 'errorType', 'contextId', 'details'].includes(k))).toBe(true);
}

/** Sends raw bytes and returns the status and JSON body of the answer. */
function raw(url: string, request: string): Promise<{ status: number; body: any }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => socket.write(request));
    let data = '';
    socket.on('data', (d) => (data += d));
    socket.on('end', () => {
      const [head, ...rest] = data.split('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head ?? '')?.[1]);
      try {
        resolve({ status, body: JSON.parse(rest.join('\r\n\r\n')) });
      } catch {
        resolve({ status, body: rest.join('') });
      }
    });
    socket.on('error', reject);
  });
}

describe('framework errors in the one error shape', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite');
  });
  afterAll(async () => server?.close());

  it('a URL that does not decode', async () => {
    const res = await server.call('GET', '/api/v2/organizations/%E0%A4%A');
    expect(res.status).toBe(400);
    expectErrorBody(res.body, 400);
  });

  it('a path parameter beyond the router limit', async () => {
    const res = await server.call('GET', `/api/v2/organizations/${'x'.repeat(600)}`);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expectErrorBody(res.body, res.status);
  });

  it('headers too large (431) and malformed HTTP (400)', async () => {
    const big = await raw(server.url, `GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(big.status).toBe(431);
    expectErrorBody(big.body, 431);
    const garbage = await raw(server.url, 'THIS IS NOT HTTP\r\n\r\n');
    expect(garbage.status).toBe(400);
    expectErrorBody(garbage.body, 400);
  });

  it('one 401 message whatever was wrong with the token', async () => {
    const messages = new Set<string>();
    for (const token of [null, 'cvt_unknown', 'x'.repeat(600)]) {
      const res = await server.call('GET', '/api/v2/organizations/me', { token });
      expect(res.status).toBe(401);
      expectErrorBody(res.body, 401);
      messages.add(res.body.message);
    }
    expect(messages.size).toBe(1);
  });

  it('no-store on API answers (plaintext, tokens); framing protection on /docs', async () => {
    expect((await server.call('GET', '/api/v2/organizations/me')).headers.get('cache-control')).toBe('no-store');
    const docs = await fetch(`${server.url}/docs`, { redirect: 'manual' });
    expect(docs.headers.get('x-frame-options')).toBe('DENY');
    expect(docs.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
  });
});
