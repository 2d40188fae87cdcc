// The wayfinding pages end to end in headless Chromium against a running stack. Prints one JSON object.
//   node flows.mjs nav|admin --base URL [--kiosk ID] [--hospital H] [--token T] [--chromium PATH] [--shots DIR]
// nav: phone-sized 院内导航 located at a kiosk: the map draws, searching "B超" finds the ultrasound room,
// an accessible route is drawn with its steps, the simulated walk advances, pauses (no progress while
// paused), changes speed and speaks steps; real navigation advances step by step.
// admin: the nav-admin disables a POI and sees the operations view's alert.
import { launch, look, newOut, openPage, options, ready } from '../../pages/browser/lib.mjs';

const { flow, opt } = options(process.argv);
const base = opt('base');
const shots = opt('shots');
const out = newOut();
const browser = await launch(opt('chromium'));
const data = (page, sel, name) => page.locator(sel).getAttribute(`data-${name}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const flows = {
  async nav() {
    const page = await openPage(browser, 'phone', out);
    await page.addInitScript(() => {
      window.__spoken = [];
      if ('speechSynthesis' in window) {
        const speak = window.speechSynthesis.speak.bind(window.speechSynthesis);
        window.speechSynthesis.speak = (u) => { window.__spoken.push(u.text); try { speak(u); } catch { /* no voice */ } };
      }
    });
    await page.goto(`${base}/pages/wayfinding?hospital=${opt('hospital', 'demo-hospital')}&kiosk=${opt('kiosk')}`);
    await ready(page);
    await page.waitForFunction(() => Number(document.querySelector('#map')?.dataset.units || 0) > 0, null, { timeout: 15000 });
    out.steps.units_drawn = Number(await data(page, '#map', 'units'));
    out.steps.where = await page.locator('#where').innerText();
    out.steps.levels = await page.locator('.level').count();
    out.steps.map_pixels = await page.evaluate(() => {
      const c = document.querySelector('#map'); const ctx = c.getContext('2d');
      const px = ctx.getImageData(0, 0, c.width, c.height).data; let ink = 0;
      for (let i = 0; i < px.length; i += 16) if (px[i] < 240 || px[i + 1] < 240) ink++;
      return ink;
    });
    // level switch
    const second = page.locator('.level').nth(1);
    await second.click();
    out.steps.level_switched = (await data(page, '#map', 'level')) === (await second.getAttribute('data-level'));
    out.steps.units_on_floor = Number(await data(page, '#map', 'units'));
    await look(page, out, 'nav-map', shots);
    // search B超
    await page.fill('#q', 'B超');
    await page.waitForSelector('#hits li button[data-go]', { timeout: 10000 });
    out.steps.first_hit = await page.locator('#hits li').first().innerText();
    await page.locator('.chip[data-profile="accessible"]').click();
    await page.locator('#hits li button[data-go]').first().click();
    await page.waitForSelector('#steps li', { timeout: 15000 });
    out.steps.steps = await page.locator('#steps li').allInnerTexts();
    out.steps.summary = await page.locator('#summary').innerText();
    out.steps.route_points = Number(await data(page, '#map', 'route-points'));
    await look(page, out, 'nav-route', shots);
    // simulated walk: advances, pause holds, speed changes
    await page.locator('#play').click();
    await sleep(1500);
    const p1 = Number(await data(page, '#map', 'progress'));
    await page.locator('#pause').click();
    await sleep(300);
    const held = Number(await data(page, '#map', 'progress'));
    await sleep(1200);
    const still = Number(await data(page, '#map', 'progress'));
    await page.locator('#speed').click();
    await page.locator('#speed').click();
    out.steps.speed = await data(page, '#map', 'speed');
    await page.locator('#pause').click();
    await sleep(1500);
    const p2 = Number(await data(page, '#map', 'progress'));
    out.steps.progress = { p1, held, still, p2 };
    await page.waitForFunction(() => Number(document.querySelector('#map')?.dataset.progress || 0) >= 0.999, null, { timeout: 60000 });
    out.steps.spoken = await page.evaluate(() => window.__spoken);
    out.steps.live_steps = Number(await data(page, '#steps', 'spoken'));
    out.steps.final_level = await data(page, '#map', 'level');
    await look(page, out, 'nav-arrived', shots);
    // real navigation: step by step
    await page.locator('#real').click();
    const before = await data(page, '#steps', 'current');
    await page.locator('#next').click();
    out.steps.real = { before, after: await data(page, '#steps', 'current') };
    // a common place with one tap
    await page.locator('.chip[data-category="toilet"]').click();
    await page.waitForFunction(() => document.querySelector('#summary')?.textContent?.includes('卫生间'), null, { timeout: 15000 });
    out.steps.toilet = await page.locator('#summary').innerText();
  },
  async day() {
    // the outpatient day: guide's demo patient signed in; the next to-do has a route
    const page = await openPage(browser, 'phone', out);
    await page.goto(`${base}/pages/wayfinding?hospital=${opt('hospital', 'demo-hospital')}&kiosk=${opt('kiosk')}#token=${opt('token')}`);
    await ready(page);
    await page.waitForSelector('#next-todo', { timeout: 15000 });
    out.steps.next = await page.locator('#next-todo').innerText();
    out.steps.day = await page.locator('#day li').allInnerTexts();
    await page.locator('#next-todo button[data-place]').click();
    await page.waitForSelector('#steps li', { timeout: 15000 });
    out.steps.steps = await page.locator('#steps li').allInnerTexts();
    await look(page, out, 'day', shots);
  },
  async admin() {
    const page = await openPage(browser, 'desktop', out);
    await page.goto(`${base}/pages/wayfinding-admin#token=${opt('token')}`);
    await ready(page);
    await page.waitForSelector('#pois tr', { timeout: 15000 });
    out.steps.rows = await page.locator('#pois tr').count();
    out.steps.alerts = await page.locator('#alerts li').allInnerTexts();
    await page.fill('#filter', '内镜');
    const row = page.locator('#pois tr').first();
    out.steps.filtered = await row.innerText();
    await row.locator('button[data-toggle]').click();
    await page.waitForFunction(() => document.querySelector('#pois tr')?.textContent?.includes('已停用'), null, { timeout: 10000 });
    out.steps.after = await page.locator('#pois tr').first().innerText();
    await look(page, out, 'admin', shots);
  },
};

try {
  if (!flows[flow]) throw new Error(`unknown flow ${flow}`);
  await flows[flow]();
  out.ok = true;
} catch (e) {
  out.errors.push(String(e.stack || e).slice(0, 800));
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
