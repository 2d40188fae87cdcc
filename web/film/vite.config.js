// Builds the viewer bundle into dist/: viewer.js (fixed name, the page loads it) plus hashed chunks,
// the decode worker and codec WASM, all flat so FilmViewerAssetFunction serves them from one folder.
// Run from web/ (`npm run build:film`): the root is this folder whatever the working directory.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  build: {
    outDir: 'dist',
    assetsDir: '',
    target: 'es2022',
    modulePreload: false,
    chunkSizeWarningLimit: 8000,
    rollupOptions: {
      input: 'src/main.js',
      output: {
        entryFileNames: 'viewer.js',
        chunkFileNames: '[name]-[hash].js',
        assetFileNames: '[name]-[hash][extname]',
      },
    },
  },
  worker: {
    format: 'es',
    rollupOptions: { output: { entryFileNames: '[name]-[hash].js', chunkFileNames: '[name]-[hash].js' } },
  },
});
