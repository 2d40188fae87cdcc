// The pages' flows end to end in headless Chromium against a running stack. Prints one JSON object.
//   node flows.mjs guide|prefs|pay|rx|desk --base URL --token T [--token2 T] [--chromium PATH] [--shots DIR]
// The guide flow prints "READY {...}" once the dashboard shows, then waits for a line on stdin (the test
// posts a hospital event meanwhile) and checks the page moved by itself.
import { launch, look, newOut, nextLine, openPage, options, ready } from './lib.mjs';

const { flow, opt } = options(process.argv);
const base = opt('base');
const shots = opt('shots');
const out = newOut();
const browser = await launch(opt('chromium'));

const text = (page, sel) => page.locator(sel).innerText();

const flows = {
  async guide() {
    const page = await openPage(browser, 'phone', out);
    await page.goto(`${base}/pages/home#token=${opt('token')}`);
    await ready(page);
    out.steps.url_after_token = page.url();
    out.steps.token_in_session = await page.evaluate(() => !!sessionStorage.getItem('bianjie.token'));
    // keyboard: the first Tab stop is the skip link, and following it lands in <main>
    await page.keyboard.press('Tab');
    out.steps.first_tab = await page.evaluate(() => document.activeElement?.textContent);
    await page.keyboard.press('Enter');
    out.steps.after_skip = await page.evaluate(() => document.activeElement?.id);
    out.steps.before = { state: await text(page, '#state'), next: await text(page, '#next-title'), cards: await page.locator('#todo-cards li').allInnerTexts() };
    await look(page, out, 'home', shots);
    console.log(`READY ${JSON.stringify(out.steps.before)}`);
    await nextLine();
    const t0 = Date.now();
    await page.waitForFunction(([state, next]) => document.querySelector('#state')?.textContent !== state
      || document.querySelector('#next-title')?.textContent !== next, [out.steps.before.state, out.steps.before.next], { timeout: 30000 });
    out.steps.update_ms = Date.now() - t0;
    // the to-do cards come from guide's notifications, made by the event pump a moment after the visit
    // moves: wait as a person would for the bill's card (a loaded machine takes seconds)
    await page.waitForFunction(() => [...document.querySelectorAll('#todo-cards li')].some((li) => li.textContent.includes('¥')),
      null, { timeout: 30000 }).catch(() => {});
    out.steps.after = { state: await text(page, '#state'), next: await text(page, '#next-title'), cards: await page.locator('#todo-cards li').allInnerTexts(),
      timeline: await page.locator('.timeline li').allInnerTexts() };
    await page.waitForFunction(() => document.querySelector('#live')?.textContent, null, { timeout: 5000 }).catch(() => {});
    out.steps.after.announced = await page.locator('#live').textContent();
    await look(page, out, 'home-updated', shots);
    // large text and high contrast: bigger type, still nothing drawn over anything else
    const before = await page.evaluate(() => parseFloat(getComputedStyle(document.body).fontSize));
    await page.getByRole('button', { name: '大字' }).click();
    await page.getByRole('button', { name: '高对比度' }).click();
    out.steps.font_px = [before, await page.evaluate(() => parseFloat(getComputedStyle(document.body).fontSize))];
    out.steps.pressed = await page.locator('[data-switch]').evaluateAll((b) => b.map((x) => x.getAttribute('aria-pressed')));
    await look(page, out, 'home-large-contrast', shots);
  },

  async prefs() {
    const page = await openPage(browser, 'phone', out);
    await page.goto(`${base}/pages/prefs#token=${opt('token')}`);
    await ready(page);
    await look(page, out, 'prefs', shots);
    await page.getByLabel('开始时间（北京时间）').fill('21:30');
    await page.getByLabel('满意度调查').check();
    await page.getByRole('button', { name: '保存设置' }).click();
    await page.waitForSelector('.notice');
    out.steps.saved = await page.evaluate(async () => {
      const r = await fetch('/guide/preferences', { headers: { Authorization: `Bearer ${sessionStorage.getItem('bianjie.token')}` } });
      return r.json();
    });
    // the WeChat subscribe sheet: three templates, one switched off, 允许
    await page.getByRole('button', { name: '订阅消息' }).click();
    out.steps.sheet = await page.locator('dialog[open]').innerText();
    await look(page, out, 'subscribe-sheet', shots);
    await page.locator('dialog[open] input[role="switch"]').nth(2).uncheck();
    await page.getByRole('button', { name: '允许' }).click();
    await page.waitForSelector('#ledger li');
    out.steps.ledger = await page.locator('#ledger li').allInnerTexts();
    // sign-in gone: what was typed survives the trip to the login page and back
    await page.getByLabel('结束时间').fill('07:15');
    await page.evaluate(() => sessionStorage.setItem('bianjie.token', 'expired.token.value'));
    await page.getByRole('button', { name: '保存设置' }).click();
    await page.waitForURL('**/pages/login');
    await ready(page);
    out.steps.login = await text(page, '#reason');
    out.steps.login_url = page.url();
    await look(page, out, 'login', shots);
    await page.goto(`${base}/pages/prefs#token=${opt('token')}`);
    await ready(page);
    out.steps.restored_end = await page.getByLabel('结束时间').inputValue();
  },

  async pay() {
    const page = await openPage(browser, 'phone', out);
    await page.goto(`${base}/pages/pay#token=${opt('token')}`);
    await ready(page);
    await look(page, out, 'pay-empty', shots);
    // UNIONPAY through the channel's (stand-in) signing page: empty form, a refused card, then a good one
    await page.locator('a[data-sign="UNIONPAY"]').click();
    await ready(page);
    out.steps.sign_url = page.url();
    await page.getByRole('button', { name: '同意协议并签约' }).click();
    out.steps.empty_errors = await page.locator('.field-error:not([hidden])').allInnerTexts();
    await page.getByLabel('银行卡号').fill('6222000000000013');
    await page.getByLabel(/我已阅读并同意/).check();
    await page.getByRole('button', { name: '同意协议并签约' }).click();
    await page.waitForSelector('p.error[role="alert"]:not([hidden])');
    out.steps.refused = { slot: await page.locator('p.error[role="alert"]:not([hidden])').first().innerText(),
      field: await page.locator('[data-field="account"] .field-error').innerText() };
    await look(page, out, 'pay-sign-refused', shots);
    await page.getByLabel('银行卡号').fill('6222000000001234');
    await page.getByRole('button', { name: '同意协议并签约' }).click();
    await page.waitForURL('**/pages/pay');
    await ready(page);
    out.steps.notice_1 = await text(page, '#notice');
    await page.locator('a[data-sign="HUIMIN"]').click();
    await ready(page);
    await page.getByLabel('惠民就医账号').fill('HM0000001234');
    await page.getByLabel(/我已阅读并同意/).check();
    await page.getByRole('button', { name: '同意协议并签约' }).click();
    await page.waitForURL('**/pages/pay');
    await ready(page);
    const order = () => page.locator('#agreements li').evaluateAll((ls) => ls.map((l) => l.dataset.channel));
    out.steps.order_signed = await order();
    await look(page, out, 'pay-two', shots);
    // arrows: HUIMIN up (the keyboard way: focus the button, press Enter)
    await page.getByRole('button', { name: '上移 惠民就医' }).focus();
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelector('#agreements li')?.dataset.channel === 'HUIMIN');
    out.steps.order_arrows = await order();
    await page.waitForFunction(() => document.querySelector('#live')?.textContent, null, { timeout: 5000 }).catch(() => {});
    out.steps.announced = await page.locator('#live').textContent();
    out.steps.focus_after_move = await page.evaluate(() => document.activeElement?.getAttribute('aria-label'));
    // drag UNIONPAY (now second) onto the first
    await page.locator('#agreements li[data-channel="UNIONPAY"]').dragTo(page.locator('#agreements li[data-channel="HUIMIN"]'));
    await page.waitForFunction(() => document.querySelector('#agreements li')?.dataset.channel === 'UNIONPAY', null, { timeout: 10000 }).catch(() => {});
    out.steps.order_drag = await order();
    out.steps.server_order = await page.evaluate(async () => {
      const r = await fetch('/pay/agreements', { headers: { Authorization: `Bearer ${sessionStorage.getItem('bianjie.token')}` } });
      return (await r.json()).agreements.filter((a) => a.status === 'ACTIVE').map((a) => [a.priority, a.channel]);
    });
    // terminate HUIMIN, with the confirmation; cancelling first changes nothing
    await page.getByRole('button', { name: '解约 惠民就医' }).click();
    out.steps.confirm = await page.locator('dialog[open]').innerText();
    await look(page, out, 'pay-confirm', shots);
    await page.getByRole('button', { name: '取消' }).click();
    out.steps.after_cancel = await order();
    await page.getByRole('button', { name: '解约 惠民就医' }).click();
    await page.getByRole('button', { name: '确认解约' }).click();
    await page.waitForFunction(() => document.querySelectorAll('#agreements li[data-channel]').length === 1);
    out.steps.after_terminate = await order();
    out.steps.ended = await page.locator('#ended li').allInnerTexts();
    await look(page, out, 'pay-final', shots);
  },

  async rx() {
    const page = await openPage(browser, 'phone', out);
    const rx = opt('rx');
    await page.goto(`${base}/pages/rx?poll_ms=1500#token=${opt('token')}`);
    await ready(page);
    const card = page.locator(`li[data-rx="${rx}"]`);
    await card.waitFor();
    out.steps.card = await card.innerText();
    out.steps.status_before = await card.getAttribute('data-status');
    await card.getByRole('button', { name: '查看处方笺' }).click();
    out.steps.slip = await page.locator(`#slip-${rx}`).innerText();
    await look(page, out, 'rx-slip', shots);
    await page.getByRole('button', { name: '出示医保电子凭证' }).click();
    await page.waitForSelector('#ec-qr');
    out.steps.qr = await page.locator('#ec-qr').evaluate((img) => ({ w: img.naturalWidth, h: img.naturalHeight, alt: img.alt }));
    const token = await page.locator('#ec-qr').getAttribute('data-token');
    out.steps.countdown = [await text(page, '#ec-countdown')];
    await page.waitForTimeout(2100);
    out.steps.countdown.push(await text(page, '#ec-countdown'));
    await look(page, out, 'rx-code', shots);
    console.log(`READY ${JSON.stringify({ ec_token: token })}`);
    await nextLine();
    await page.waitForFunction((id) => document.querySelector(`li[data-rx="${id}"]`)?.dataset.status === 'dispensed', rx, { timeout: 30000 });
    out.steps.card_after = await page.locator(`li[data-rx="${rx}"]`).innerText();
    out.steps.ec_after = await text(page, '#ecard');
    await look(page, out, 'rx-dispensed', shots);
  },

  // bought in the hospital: the guide card for pick-up on the home page, 已取药 on the prescriptions page,
  // and the home page once more at desktop size
  async pickup() {
    const page = await openPage(browser, 'phone', out);
    await page.goto(`${base}/pages/home?poll_ms=1500#token=${opt('token')}`);
    await ready(page);
    out.steps.before = await page.locator('#todo-cards li').allInnerTexts().catch(() => []);
    console.log('READY {}');
    await nextLine();
    await page.waitForFunction(() => [...document.querySelectorAll('#todo-cards li')].some((li) => li.dataset.action === 'medicine'), null, { timeout: 40000 });
    out.steps.cards = await page.locator('#todo-cards li').allInnerTexts();
    out.steps.state = await text(page, '#state');
    await look(page, out, 'home-pickup', shots);
    await page.getByRole('link', { name: '电子处方' }).click();
    await ready(page);
    const card = page.locator(`li[data-rx="${opt('rx')}"]`);
    await card.waitFor();
    out.steps.rx_card = await card.innerText();
    out.steps.rx_status = await card.getAttribute('data-status');
    await look(page, out, 'rx-in-hospital', shots);
    const wide = await openPage(browser, 'desktop', out);
    await wide.goto(`${base}/pages/home#token=${opt('token')}`);
    await ready(wide);
    await look(wide, out, 'home-desktop', shots);
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
