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

const SECRET = 'admin-secret-for-tests';

function fakeRequest(method: string, url: string, remoteAddress: string, body = '', authorization: string | undefined = `Bearer ${SECRET}`): IncomingMessage {
  const req = new EventEmitter() as IncomingMessage & EventEmitter;
  Object.assign(req, { method, url, headers: authorization ? { authorization } : {}, socket: { remoteAddress }, destroy() {}, resume() {} });
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

const context = (faults: FaultController, faultEndpoint = true) => ({
  faults,
  secret: SECRET,
  faultEndpoint,
  credentials: { issue: async (accountId: string) => ({ accessKeyId: `AKIA${accountId}`, secretAccessKey: 'issued' }) },
});

describe('admin endpoint', () => {
  it('refuses a caller that is not on loopback, and changes nothing', async () => {
    const faults = new FaultController();
    const { res, out } = fakeResponse();
    await handleAdminRequest(fakeRequest('PUT', '/_localkms/faults', '10.1.2.3', '{"outage":"unavailable"}'), res, context(faults));
    expect(out.status).toBe(403);
    expect(faults.outage).toBe('none');
  });

  it('lets a loopback caller change faults, and rejects bad values with 400', async () => {
    const faults = new FaultController();
    let r = fakeResponse();
    await handleAdminRequest(fakeRequest('PUT', '/_localkms/faults', '::ffff:127.0.0.1', '{"throttle":{"ratio":0.5}}'), r.res, context(faults));
    expect(r.out.status).toBe(200);
    expect(JSON.parse(r.out.body).throttle).toEqual({ ratio: 0.5 });
    r = fakeResponse();
    await handleAdminRequest(fakeRequest('PUT', '/_localkms/faults', '127.0.0.1', '{"throttle":{"ratio":2}}'), r.res, context(faults));
    expect(r.out.status).toBe(400);
    r = fakeResponse();
    await handleAdminRequest(fakeRequest('GET', '/_localkms/other', '127.0.0.1'), r.res, context(faults));
    expect(r.out.status).toBe(404);
  });

  it('refuses a loopback caller without the admin secret, and changes nothing', async () => {
    const faults = new FaultController();
    for (const auth of ['', 'Bearer wrong', `Basic ${SECRET}`]) {
      const r = fakeResponse();
      await handleAdminRequest(fakeRequest('PUT', '/_localkms/faults', '127.0.0.1', '{"outage":"unavailable"}', auth), r.res, context(faults));
      expect(r.out.status).toBe(401);
    }
    expect(faults.outage).toBe('none');
  });

  it('has no fault endpoint unless enabled, and none at all without a secret', async () => {
    const faults = new FaultController();
    let r = fakeResponse();
    await handleAdminRequest(fakeRequest('PUT', '/_localkms/faults', '127.0.0.1', '{"outage":"unavailable"}'), r.res, context(faults, false));
    expect(r.out.status).toBe(404);
    r = fakeResponse();
    await handleAdminRequest(fakeRequest('POST', '/_localkms/credentials', '127.0.0.1', '{"accountId":"111122223333"}'), r.res, { ...context(faults), secret: undefined });
    expect(r.out.status).toBe(404);
    expect(faults.outage).toBe('none');
  });

  it('issues the credentials of an account to the holder of the secret', async () => {
    let r = fakeResponse();
    await handleAdminRequest(fakeRequest('POST', '/_localkms/credentials', '127.0.0.1', '{"accountId":"111122223333"}'), r.res, context(new FaultController(), false));
    expect(r.out.status).toBe(200);
    expect(JSON.parse(r.out.body)).toEqual({ accessKeyId: 'AKIA111122223333', secretAccessKey: 'issued' });
    r = fakeResponse();
    await handleAdminRequest(fakeRequest('POST', '/_localkms/credentials', '127.0.0.1', '{"accountId":"1234"}'), r.res, context(new FaultController(), false));
    expect(r.out.status).toBe(400);
  });
});
