// Content's two scripts, each one self-contained ES module in dist/assets/, published to ContentSiteBucket
// and served at /content/site/assets/<name> (functions/content); the pages themselves are rendered by the
// service:
// - player.js: the website's one script, the video player (hls.js where the browser has no native HLS);
// - console.js (+ console.css): the editors' statistics console at /content/console, with the chart library
//   (uPlot). Only the console page loads it, so the public site's pages never carry the charts.
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
    cssCodeSplit: true,
    lib: {
      entry: { player: here('src/player.ts'), console: here('src/console.ts') },
      formats: ['es'],
      fileName: (_format, name) => `assets/${name}.js`,
      cssFileName: 'console', // dist/console.css (the library's style and the console's own)
    },
  },
});
