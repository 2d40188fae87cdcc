// The MDT consultation pages (多学科会诊): one Vite multi-page build into dist/ (dist/consult-*.html +
// dist/assets/), published to PagesWebBucket by consult's demo and served at /pages/<page> by the pages
// service, like web/pages. Run from web/ (`npm run build:consult`). They share web/pages/src/shared.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
export const PAGES = ['consult-apply', 'consult-records', 'consult-detail', 'consult-admin'];

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
        entryFileNames: 'assets/[name]-[hash].js',
        chunkFileNames: 'assets/[name]-[hash].js',
        assetFileNames: 'assets/[name]-[hash][extname]',
      },
    },
  },
});
