// Times Orthanc's Web Viewer in headless Chromium: first non-blank canvas, and when the series' images
// stopped arriving (network idle for 1 s). Prints one JSON object. Used by scripts/bench/film.py.
//   node orthanc-check.mjs URL [--chromium /usr/bin/chromium]
import { chromium } from 'playwright-core';

const args = process.argv.slice(2);
const i = args.indexOf('--chromium');
const browser = await chromium.launch({
  executablePath: i >= 0 ? args[i + 1] : '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const out = {};
try {
  const page = await browser.newPage({ viewport: { width: 375, height: 667 }, isMobile: true, hasTouch: true });
  let last = 0;
  let images = 0;
  page.on('response', (r) => { if (/instances|frames|images/.test(r.url())) { images += 1; last = Date.now(); } });
  const t0 = Date.now();
  await page.goto(args[0]);
  await page.waitForFunction(() => {
    for (const c of document.querySelectorAll('canvas')) {
      if (!c.width || !c.height) continue;
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      for (let k = 0; k < d.length; k += 64) if (d[k] > 10) return true;
    }
    return false;
  }, null, { timeout: 60000, polling: 20 });
  out.first_image_ms = Date.now() - t0;
  while (Date.now() - Math.max(last, t0) < 1000 && Date.now() - t0 < 60000) await page.waitForTimeout(100);
  out.series_ms = Math.max(last, t0) - t0;
  out.image_requests = images;
} catch (e) {
  out.error = String(e).slice(0, 300);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
