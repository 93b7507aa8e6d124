import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/** The admin UI (web/, React + Vite) served at `/` from its build, web/dist (docs/UI.md). */
export interface WebUiRouteOptions {
  /** The Vite build output: index.html and assets/. */
  distDir: string;
}

// The page talks only to this server and runs only its own files: a token in sessionStorage is
// then out of reach of injected scripts, and the page cannot be framed.
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

/**
 * web/dist of the package, found by walking up from this file to the directory that holds
 * package.json, so it is the same whether this runs from src/ (vitest) or from dist/src/ (built).
 */
export function webUiDistDir(from: string = path.dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) return path.resolve('web', 'dist');
    dir = parent;
  }
  return path.join(dir, 'web', 'dist');
}

export async function webUiRoutes(app: FastifyInstance, { distDir }: WebUiRouteOptions): Promise<void> {
  if (!fs.existsSync(path.join(distDir, 'index.html'))) {
    app.log.warn({ distDir }, 'admin UI not built: / explains how to build it; the API is unaffected');
    app.get('/', { schema: { hide: true } }, async (_request, reply) =>
      reply.status(503).headers({ ...SECURITY_HEADERS, 'cache-control': 'no-cache' }).type('text/html; charset=utf-8').send(missingBuildPage(distDir)),
    );
    return;
  }

  await app.register(fastifyStatic, {
    root: distDir,
    prefix: '/',
    // One route per built file (no catch-all), so unknown paths keep the API's JSON 404.
    wildcard: false,
    index: 'index.html',
    decorateReply: false,
    cacheControl: false,
    setHeaders(res, filePath) {
      for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
      // Vite puts a content hash in every file name under assets/, so those never change.
      const hashed = path.relative(distDir, filePath).split(path.sep)[0] === 'assets';
      res.setHeader('cache-control', hashed ? 'public, max-age=31536000, immutable' : 'no-cache');
    },
  });
}

function missingBuildPage(distDir: string): string {
  const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>convault: admin UI not built</title></head>
<body>
<main>
<h1>The convault admin UI is not built</h1>
<p>This server runs, and its API answers at <code>/api/v2</code> (documentation at <a href="/docs">/docs</a>), but the Encryption Keys page has not been built: <code>${escape(distDir)}</code> holds no <code>index.html</code>.</p>
<p>Build it in the convault directory, then restart <code>convault serve</code>:</p>
<pre><code>npm run build</code></pre>
<p>(<code>npm ci</code> builds it too. To build only the page: <code>npx vite build --config web/vite.config.ts</code>.)</p>
</main>
</body>
</html>
`;
}
