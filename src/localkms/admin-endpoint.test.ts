import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { handleAdminRequest, isLoopbackAddress } from './admin-endpoint.js';
import { FaultController } from './fault-controller.js';

describe('isLoopbackAddress', () => {
  it.each(['127.0.0.1', '127.8.9.10', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1'])('%s is loopback', (a) => {
    expect(isLoopbackAddress(a)).toBe(true);
  });
  it.each(['10.0.0.5', '192.168.1.2', '::ffff:10.0.0.5', '::2', 'fe80::1', '0.0.0.0', '', undefined, 'localhost', '128.0.0.1'])(
    '%s is not loopback',
    (a) => {
      expect(isLoopbackAddress(a)).toBe(false);
    },
  );
});

function fakeRequest(method: string, url: string, remoteAddress: string, body = ''): IncomingMessage {
  const req = new EventEmitter() as IncomingMessage & EventEmitter;
  Object.assign(req, { method, url, socket: { remoteAddress }, destroy() {} });
  queueMicrotask(() => {
    if (body) req.emit('data', Buffer.from(body));
    req.emit('end');
  });
  return req;
}

function fakeResponse() {
  const out = { status: 0, body: '' };
  const res = {
    setHeader() {},
    writeHead(status: number) {
      out.status = status;
    },
    end(body: string) {
      out.body = body;
    },
  } as unknown as ServerResponse;
  return { res, out };
}

describe('admin endpoint', () => {
  it('refuses a caller that is not on loopback, and changes nothing', async () => {
    const faults = new FaultController();
    const { res, out } = fakeResponse();
    await handleAdminRequest(fakeRequest('PUT', '/_localkms/faults', '10.1.2.3', '{"outage":"unavailable"}'), res, faults);
    expect(out.status).toBe(403);
    expect(faults.outage).toBe('none');
  });

  it('lets a loopback caller change faults, and rejects bad values with 400', async () => {
    const faults = new FaultController();
    let r = fakeResponse();
    await handleAdminRequest(fakeRequest('PUT', '/_localkms/faults', '::ffff:127.0.0.1', '{"throttle":{"ratio":0.5}}'), r.res, faults);
    expect(r.out.status).toBe(200);
    expect(JSON.parse(r.out.body).throttle).toEqual({ ratio: 0.5 });
    r = fakeResponse();
    await handleAdminRequest(fakeRequest('PUT', '/_localkms/faults', '127.0.0.1', '{"throttle":{"ratio":2}}'), r.res, faults);
    expect(r.out.status).toBe(400);
    r = fakeResponse();
    await handleAdminRequest(fakeRequest('GET', '/_localkms/other', '127.0.0.1'), r.res, faults);
    expect(r.out.status).toBe(404);
  });
});
