// The content website in headless Chromium, as a phone shows it (375 px, WeChat's user agent): home,
// an article, the search page (typing "tnb"), the video library and a video page whose player must
// actually play (hls.js on Chromium: currentTime advances). Each page: text present, no two pieces of
// text over each other, nothing wider than the phone, axe-core with no serious violation, no script error,
// nothing the Content-Security-Policy blocked. Prints one JSON line.
// Usage: node site.mjs --base http://127.0.0.1:3000 --video v-... --article a-... [--chromium /usr/bin/chromium]
import { axe, launch, layout, openPage, options, serious } from '../../pages/browser/lib.mjs';

const { opt } = options(process.argv);
const base = opt('base', 'http://127.0.0.1:3000');
const out = { ok: false, errors: [], csp_violations: [], pages: {} };

async function check(page, name, path, expect) {
  const response = await page.goto(base + path, { waitUntil: 'load' });
  const text = await page.evaluate(() => document.body.innerText);
  const shape = await layout(page);
  const violations = serious(await axe(page));
  const missing = expect.filter((t) => !text.includes(t));
  out.pages[name] = { status: response.status(), missing, overlaps: shape.overlaps?.length ?? 0,
    too_wide: shape.tooWide ?? shape.too_wide ?? false, axe_serious: violations,
    h1: await page.evaluate(() => document.querySelectorAll('h1').length),
    lang: await page.evaluate(() => document.documentElement.lang) };
  return out.pages[name];
}

const browser = await launch(opt('chromium'));
try {
  const page = await openPage(browser, 'phone', out);
  await check(page, 'home', '/content/site', ['申康医联 健康科普', '科普知识', '健康资讯', '糖尿病患者的饮食管理']);
  await check(page, 'article', `/content/site/articles/${opt('article')}`, ['完整性校验']);
  await check(page, 'search', '/content/site/search', ['搜索']);
  await page.fill('#q', 'tnb');
  await Promise.all([page.waitForNavigation(), page.click('form.search button')]);
  out.pages.search.results = await page.evaluate(() => [...document.querySelectorAll('.list .t')].map((a) => a.textContent));
  await check(page, 'library', '/content/site/videos', ['按医院浏览', '按疾病浏览', '脑卒中']);
  await check(page, 'video', `/content/site/videos/${opt('video')}`, ['脑卒中后的居家康复训练']);
  const played = await page.evaluate(async () => {
    const v = document.getElementById('player');
    v.muted = true;
    const deadline = Date.now() + 20000;
    while (!v.dataset.levels && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    try { await v.play(); } catch (e) { return { error: String(e), engine: v.dataset.engine }; }
    while (v.currentTime < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    return { engine: v.dataset.engine, levels: Number(v.dataset.levels || 0), current_time: v.currentTime,
      width: v.videoWidth, height: v.videoHeight };
  });
  out.pages.video.playback = played;
  out.ok = true;
} catch (e) {
  out.errors.push(String(e).slice(0, 500));
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
