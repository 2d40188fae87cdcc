// The 随申办 / 互联网总平台 entry pages (identity, issue 12): built by the one web/ npm project into
// web/pages/dist beside the patient pages (after them: `npm run build:identity`, no emptying), so
// `bianjie pages publish` ships them and PagesPageFunction serves them at /pages/entry and
// /pages/entry-callback on the APIs' origin, with the same per-response nonce CSP. The shared
// pieces (api, ui, session, base.css) are web/pages/src/shared: one token per tab for every page.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
export const PAGES = ['entry', 'entry-callback'];

export default defineConfig({
  root: here('.'),
  base: './',
  build: {
    outDir: here('../pages/dist'),
    emptyOutDir: false,
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
