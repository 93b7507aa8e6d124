import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// The admin UI: built into web/dist, which `convault serve` serves at `/` (src/server/routes/web-ui.ts).
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Small and self-contained: no source maps in the package, no inline scripts (the server sends a strict CSP).
    sourcemap: false,
    assetsInlineLimit: 0,
  },
  server: {
    // `npx vite --config web/vite.config.ts` for UI work against a running `convault serve` on :8080.
    proxy: { '/api': 'http://127.0.0.1:8080' },
  },
});
