// The service bot's pages: the chat widget (chat) and the agent desk (desk), one Vite multi-page build into
// dist/, published to AssistantWebBucket and served at /assistant/pages/<page> and /assistant/assets/<file>
// (functions/assistant). Run from web/ (`npm run build:assistant`). No inline scripts (the CSP forbids them).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
export const PAGES = ['chat', 'desk'];

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
