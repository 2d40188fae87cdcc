// The accompanied-visit pages (云陪诊): the patient's invite page and the companion's join page and room.
// Built like web/pages (one Vite, no inline scripts) into web/escort/dist, published to PagesWebBucket by
// escort's demo and served at /pages/escort-<page> with the pages' CSP. They share web/pages/src/shared.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
export const PAGES = ['escort-invite', 'escort-join', 'escort-room'];

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
