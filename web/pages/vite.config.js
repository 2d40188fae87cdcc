// The patient and staff pages: one Vite multi-page build into dist/ (dist/<page>.html + dist/assets/),
// published to PagesWebBucket and served at /pages/<page> and /pages/assets/<file> (functions/pages).
// Run from web/ (`npm run build:pages`). No inline scripts: the pages' CSP allows only our own files.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
export const PAGES = ['home', 'prefs', 'pay', 'pay-sign', 'rx', 'login', 'rx-doctor', 'rx-hospital', 'rx-pharmacy'];

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
