// First contentful paint and time to the page's data (body[data-ready]) for each page, each load in a
// fresh browser context (nothing cached): patient pages at phone size, the staff desk (rx-*) at desktop size
// with the fragment of its own banner link. Prints one JSON object.
//   node fcp.mjs --base URL --token T [--fragments '{"rx-doctor": "token=...&key=..."}'] [--pages a,b]
//                [--runs 5] [--chromium PATH]
import { launch, options, SIZES } from './lib.mjs';

const { opt } = options(['', '', 'x', ...process.argv.slice(2)]);
const base = opt('base');
const runs = Number(opt('runs', 5));
const pages = (opt('pages', 'home,prefs,pay,rx')).split(',');
const fragments = JSON.parse(opt('fragments', '{}'));
const browser = await launch(opt('chromium'));
const out = { pages: {}, errors: [] };
try {
  for (const name of pages) {
    const fcp = []; const ready = []; let first = null;
    // one load first, reported apart (first_fcp_ms) and not in the runs: the first visit after the stack
    // started also pays its functions' cold start and the demos' event pumps still settling
    for (let i = -1; i < runs; i += 1) {
      const staff = name.startsWith('rx-');
      const context = await browser.newContext(staff ? SIZES.desktop : SIZES.phone);
      const page = await context.newPage();
      const t0 = Date.now();
      await page.goto(`${base}/pages/${name}#${fragments[name] || `token=${opt('token')}`}`);
      await page.waitForSelector('body[data-ready="1"]', { timeout: 30000 });
      const took = Date.now() - t0;
      const paint = await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null);
      if (i < 0) first = paint; else { ready.push(took); fcp.push(paint); }
      await context.close();
    }
    out.pages[name] = { fcp_ms: fcp, ready_ms: ready, first_fcp_ms: first };
  }
} catch (e) {
  out.errors.push(String(e).slice(0, 500));
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
