// Opens a viewing link in headless Chromium on a phone-sized viewport, waits until Cornerstone has drawn
// the image, checks the canvas is not blank, drags (window/level is the default tool) and checks the
// pixels change. Prints one JSON object. Used by tests/integration/film and scripts/bench/film.py.
//   node browser-check.mjs URL [--chromium /usr/bin/chromium] [--width 375 --height 667]
import { chromium } from 'playwright-core';

const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : dflt; };
const url = args[0];
const browser = await chromium.launch({
  executablePath: opt('chromium', '/usr/bin/chromium'),
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const out = { url_ok: false, errors: [] };
try {
  const page = await browser.newPage({
    viewport: { width: Number(opt('width', 375)), height: Number(opt('height', 667)) }, isMobile: true, hasTouch: true,
    userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 MicroMessenger/8.0.47',
  });
  page.on('pageerror', (e) => out.errors.push(String(e).slice(0, 300)));
  // anything the page's Content-Security-Policy blocked (the page must work entirely within it)
  out.csp_violations = [];
  page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) out.csp_violations.push(m.text().slice(0, 300)); });
  const response = await page.goto(url);
  out.status = response.status();
  await page.waitForFunction(() => window.FILM && (window.FILM.ready || window.FILM.error), null, { timeout: 30000 });
  const sample = () => page.evaluate(() => {
    const c = document.querySelector('#viewport canvas');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let sum = 0; let sq = 0; let n = 0; let hash = 0;
    for (let i = 0; i < d.length; i += 16) { const g = (d[i] + d[i + 1] + d[i + 2]) / 3; sum += g; sq += g * g; n += 1; hash = (hash * 31 + d[i]) | 0; }
    const mean = sum / n;
    return { width: c.width, height: c.height, mean, std: Math.sqrt(sq / n - mean * mean), hash };
  });
  out.marks = await page.evaluate(() => window.FILM.marks);
  out.error = await page.evaluate(() => window.FILM.error || null);
  // Cornerstone's first IMAGE_RENDERED can precede the pixels on a loaded machine: give the canvas up to
  // five seconds to show an image (a canvas that stays uniform still fails the test)
  for (let i = 0; i < 50 && (await sample()).std <= 10; i += 1) await page.waitForTimeout(100);
  out.before = await sample();
  const box = await page.locator('#viewport').boundingBox();
  const x = box.x + box.width / 2; const y = box.y + box.height / 2;
  await page.mouse.move(x, y);
  await page.mouse.down();
  for (let i = 1; i <= 10; i += 1) await page.mouse.move(x + i * 12, y + i * 6);
  await page.mouse.up();
  await page.waitForTimeout(300);
  out.after = await sample();
  out.overlay = await page.locator('#overlay2').textContent();
  await page.waitForFunction(() => window.FILM.marks.series_loaded, null, { timeout: 30000 }).catch(() => {});
  out.marks = await page.evaluate(() => window.FILM.marks);
  out.frames_handed_over = await page.evaluate(() => window.FILM.framesHandedOver || 0);
  out.tools = await page.locator('#tools button').allTextContents();
  // the report panel (报告): what a patient sees after tapping it
  await page.evaluate(() => document.querySelector('button[data-panel="report"]').click());
  await page.waitForFunction(() => document.querySelector('#report').children.length > 1, null, { timeout: 5000 })
    .catch(() => {});
  out.report = await page.locator('#report').innerText();
  out.report_links = await page.locator('#report a').evaluateAll((as) => as.map((a) => ({ text: a.textContent, target: a.target })));
  if (opt('screenshot')) await page.screenshot({ path: opt('screenshot') });
  out.url_ok = true;
} catch (e) {
  out.errors.push(String(e).slice(0, 500));
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
