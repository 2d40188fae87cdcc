// The statistics console (内容统计) in headless Chromium at desktop size, opened as the banner's link
// (#token=<chief-editor token>): the token leaves the address, the views chart is drawn (a non-empty
// uPlot canvas), the table beside it holds the same numbers as /content/stats (yesterday's included),
// the official account's chart and the tops are filled, axe-core finds no serious violation, and there is
// no script error and nothing the Content-Security-Policy blocked. Prints one JSON line.
// Usage: node console.mjs --base http://127.0.0.1:3000 --token <staff token> [--chromium /usr/bin/chromium]
import { axe, launch, openPage, options, serious } from '../../pages/browser/lib.mjs';

const { opt } = options(process.argv);
const base = opt('base', 'http://127.0.0.1:3000');
const out = { ok: false, errors: [], csp_violations: [] };

const browser = await launch(opt('chromium'));
try {
  const page = await openPage(browser, 'desktop', out);
  const response = await page.goto(`${base}/content/console#token=${opt('token')}`, { waitUntil: 'load' });
  out.status = response.status();
  await page.waitForSelector('body[data-loaded="1"]', { timeout: 20000 });
  out.address = page.url();
  out.charts = await page.evaluate(() => [...document.querySelectorAll('.chart')].map((c) => {
    const canvas = c.querySelector('canvas');
    let inked = 0;
    if (canvas) {
      const ctx = canvas.getContext('2d');
      const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
      for (let i = 3; i < data.length; i += 4) if (data[i] > 0) inked += 1;
    }
    return { id: c.id, drawn: Number(c.dataset.drawn || 0), canvas: canvas ? [canvas.width, canvas.height] : null,
      inked_pixels: inked, label: c.getAttribute('aria-label') };
  }));
  out.tables = await page.evaluate((ids) => Object.fromEntries(ids.map((id) => [id,
    [...document.querySelectorAll(`#${id} tbody tr`)].map((tr) => [...tr.children].map((c) => c.textContent))])),
  ['table-views', 'table-oa', 'table-items', 'table-columns', 'table-terms']);
  out.status_text = await page.evaluate(() => document.getElementById('status').textContent);
  out.axe_serious = serious(await axe(page));
  out.h1 = await page.evaluate(() => document.querySelectorAll('h1').length);
  out.lang = await page.evaluate(() => document.documentElement.lang);
  out.ok = true;
} catch (e) {
  out.errors.push(String(e).slice(0, 500));
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
