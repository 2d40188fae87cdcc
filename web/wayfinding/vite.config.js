// The wayfinding pages (院内导航 for patients, 导航管理 for staff): one Vite multi-page build into dist/,
// published to PagesWebBucket by bianjie_dev/wayfinding/demo.py and served at /pages/wayfinding and
// /pages/wayfinding-admin by the pages service (its nonce CSP: no inline script). Run from web/
// (`npm run build:wayfinding`). They reuse web/pages/src/shared (frame, DOM helpers, API client).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
export const PAGES = ['wayfinding', 'wayfinding-admin'];

export default defineConfig({
  root: here('.'),
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    modulePreload: false,
    assetsInlineLimit: 0,
    rollupOptions: {
      input: Object.fromEntries(PAGES.map((p) => [p, here(`${p}.html`)])),
      output: {
        entryFileNames: 'assets/wf-[name]-[hash].js',
        chunkFileNames: 'assets/wf-[name]-[hash].js',
        assetFileNames: 'assets/wf-[name]-[hash][extname]',
      },
    },
  },
});
