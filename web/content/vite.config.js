// The website's one script: the video player (hls.js where the browser has no native HLS), built as one
// self-contained ES module, dist/assets/player.js, published to ContentSiteBucket and served at
// /content/site/assets/player.js (functions/content). The pages themselves are rendered by the service.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  root: here('.'),
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2020',
    modulePreload: false,
    minify: true,
    lib: { entry: here('src/player.ts'), formats: ['es'], fileName: () => 'assets/player.js' },
  },
});
