import fs from 'node:fs';
import path from 'node:path';
import Fastify from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { webUiDistDir, webUiRoutes } from '../../src/server/routes/web-ui.js';
import { tempDir } from '../support/databases.js';

/** How `convault serve` serves the admin UI's build at `/`, and what `/` says when there is none. */
describe('web UI route', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

  async function appServing(distDir: string) {
    const app = Fastify({ logger: false });
    app.get('/api/v2/ping', async () => ({ ok: true }));
    await app.register(webUiRoutes, { distDir });
    return app;
  }

  it('without a build, answers / with how to build it, and everything else still works', async () => {
    const distDir = path.join(tempDir('convault-ui-route-'), 'missing');
    dirs.push(path.dirname(distDir));
    const app = await appServing(distDir);
    const res = await app.inject({ method: 'GET', url: '/' });
    expect(res.statusCode).toBe(503);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.body).toContain('The convault admin UI is not built');
    expect(res.body).toContain('npm run build');
    expect(res.body).toContain(distDir);
    expect((await app.inject({ method: 'GET', url: '/api/v2/ping' })).json()).toEqual({ ok: true });
    await app.close();
  });

  it('serves the build: index.html at / with a strict CSP, hashed assets cached for good, no catch-all', async () => {
    const distDir = tempDir('convault-ui-route-');
    dirs.push(distDir);
    fs.mkdirSync(path.join(distDir, 'assets'));
    fs.writeFileSync(path.join(distDir, 'index.html'), '<!doctype html><title>UI</title><script type="module" src="/assets/index-abc123.js"></script>');
    fs.writeFileSync(path.join(distDir, 'assets', 'index-abc123.js'), 'console.log(1)');
    const app = await appServing(distDir);

    const index = await app.inject({ method: 'GET', url: '/' });
    expect(index.statusCode).toBe(200);
    expect(index.headers['content-type']).toMatch(/^text\/html/);
    expect(index.body).toContain('<title>UI</title>');
    expect(index.headers['content-security-policy']).toContain("script-src 'self'");
    expect(index.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(index.headers['cache-control']).toBe('no-cache');
    expect(index.headers['x-content-type-options']).toBe('nosniff');

    const asset = await app.inject({ method: 'GET', url: '/assets/index-abc123.js' });
    expect(asset.statusCode).toBe(200);
    expect(asset.headers['cache-control']).toBe('public, max-age=31536000, immutable');

    // Unknown paths are not answered with the page: the API's own 404 stays in charge.
    expect((await app.inject({ method: 'GET', url: '/no-such-page' })).statusCode).toBe(404);
    expect((await app.inject({ method: 'GET', url: '/../package.json' })).statusCode).toBe(404);
    await app.close();
  });

  it('finds web/dist of the package from src/ (tests) and from dist/src/ (built)', () => {
    const root = path.resolve('.');
    expect(webUiDistDir()).toBe(path.join(root, 'web', 'dist'));
    expect(webUiDistDir(path.join(root, 'dist', 'src', 'server', 'routes'))).toBe(path.join(root, 'web', 'dist'));
  });
});
