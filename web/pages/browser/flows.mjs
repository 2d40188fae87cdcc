// The pages' flows end to end in headless Chromium against a running stack. Prints one JSON object.
//   node flows.mjs guide|prefs|pay|rx|pickup|desk --base URL --token T [--chromium PATH] [--shots DIR]
//   desk also takes --doctor FRAGMENT --clerk T --pharmacist T --pid ID --visit VISIT
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
    out.steps.bills = await page.locator('#bills li').allInnerTexts();
    out.steps.charge_states = await text(page, '#charge-states');
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

  // a valid prescription that may leave the hospital: the patient chooses in the hospital (told where to go),
  // then changes their mind and takes it outside (released: the e-credential code is offered)
  async choice() {
    const page = await openPage(browser, 'phone', out);
    const rx = opt('rx');
    await page.goto(`${base}/pages/rx#token=${opt('token')}`);
    await ready(page);
    const card = page.locator(`li[data-rx="${rx}"]`);
    await card.waitFor();
    out.steps.status_before = await card.getAttribute('data-status');
    out.steps.choices = await card.locator('[data-purchase]').allInnerTexts();
    await look(page, out, 'rx-choice', shots);
    await card.locator('[data-purchase="in_hospital"]').click();
    out.steps.in_hospital = await page.locator(`li[data-rx="${rx}"] fieldset.choice`).innerText();
    out.steps.pressed = await page.locator(`li[data-rx="${rx}"] [data-purchase="in_hospital"]`).getAttribute('aria-pressed');
    await look(page, out, 'rx-choice-in-hospital', shots);
    await page.locator(`li[data-rx="${rx}"] [data-purchase="external"]`).click();
    await page.waitForSelector(`li[data-rx="${rx}"][data-status="released"]`, { timeout: 20000 });
    out.steps.card_after = await page.locator(`li[data-rx="${rx}"]`).innerText();
    out.steps.code_offered = await page.getByRole('button', { name: '出示医保电子凭证' }).isVisible();
    await look(page, out, 'rx-choice-external', shots);
  },

  // the hospital's desk settles a valid prescription in the hospital (the patient paid at the cashier)
  async settle() {
    const page = await openPage(browser, 'desktop', out);
    const rx = opt('rx');
    await page.goto(`${base}/pages/rx-hospital#token=${opt('token')}`);
    await ready(page);
    const card = page.locator(`#valid li[data-rx="${rx}"]`);
    await card.waitFor({ timeout: 20000 });
    out.steps.button = await card.locator('button[data-action="in_hospital"]').innerText();
    await card.locator('button[data-action="in_hospital"]').click();
    await page.locator(`#done li[data-rx="${rx}"]`).waitFor({ timeout: 20000 });
    out.steps.done = await page.locator(`#done li[data-rx="${rx}"]`).innerText();
    out.steps.still_pending = await page.locator(`#valid li[data-rx="${rx}"]`).count();
    await look(page, out, 'hospital-settled', shots);
  },

  // the prescription desk and the patient around it: the doctor issues (a pre-check problem fixed on the
  // way), signs and uploads; the hospital releases it; the patient sees it and shows the e-credential code;
  // the pharmacist authorizes from the code, reviews (an empty rejection refused first) and dispenses; the
  // patient sees it dispensed. Then the doctor issues a second one and revokes it while unused.
  // Staff at desktop size, the patient at 375 px.
  async desk() {
    const pid = opt('pid');
    const doctor = await openPage(browser, 'desktop', out);
    await doctor.goto(`${base}/pages/rx-doctor#${opt('doctor')}`);
    await ready(doctor);
    await look(doctor, out, 'doctor-empty', shots);
    const wrong = pid.slice(0, 17) + (pid[17] === '0' ? '1' : '0'); // a check digit typed wrong
    await doctor.getByLabel('身份证号').fill(wrong);
    await doctor.getByLabel('姓名', { exact: true }).fill('张三');
    await doctor.getByLabel('就诊号').fill(opt('visit'));
    await doctor.getByLabel('药品', { exact: true }).selectOption('XA10BAE024A001010100001');
    await doctor.waitForSelector('#rx-form[data-state="problems"]', { timeout: 20000 });
    out.steps.problem = await text(doctor, '.field[data-field="cert_no"] .field-error');
    out.steps.problem_invalid = await doctor.getByLabel('身份证号').getAttribute('aria-invalid');
    await look(doctor, out, 'doctor-problem', shots);
    await doctor.getByLabel('身份证号').fill(pid);
    await doctor.waitForSelector('#rx-form[data-state="passed"]', { timeout: 20000 });
    out.steps.passed = await text(doctor, '#precheck-status');
    out.steps.problem_after = await doctor.locator('.field[data-field="cert_no"] .field-error').isHidden();
    await doctor.locator('#show-signing').click();
    await doctor.waitForSelector('#signed', { timeout: 20000 });
    out.steps.signing_input = await text(doctor, '#signing-input');
    out.steps.verify = await text(doctor, '#verify-result');
    out.steps.signature = await text(doctor, '#signature');
    await look(doctor, out, 'doctor-signed', shots);
    await doctor.locator('#upload').click();
    await doctor.waitForSelector('#uploaded', { timeout: 20000 });
    out.steps.uploaded = await text(doctor, '#uploaded');
    const rx = out.steps.signing_input.match(/rx_id=(\S+)/)[1];
    out.steps.rx_id = rx;
    await look(doctor, out, 'doctor-uploaded', shots);

    const hospital = await openPage(browser, 'desktop', out);
    await hospital.goto(`${base}/pages/rx-hospital#token=${opt('clerk')}`);
    await ready(hospital);
    const pending = hospital.locator(`#valid li[data-rx="${rx}"]`);
    await pending.waitFor({ timeout: 20000 });
    out.steps.hospital_card = await pending.innerText();
    await look(hospital, out, 'hospital-valid', shots);
    await pending.locator('button[data-action="external"]').click();
    await hospital.locator(`#done li[data-rx="${rx}"]`).waitFor({ timeout: 20000 });
    out.steps.hospital_done = await hospital.locator(`#done li[data-rx="${rx}"]`).innerText();
    await look(hospital, out, 'hospital-released', shots);

    const patient = await openPage(browser, 'phone', out);
    await patient.goto(`${base}/pages/home?poll_ms=1500#token=${opt('token')}`);
    await ready(patient);
    await patient.waitForFunction(() => [...document.querySelectorAll('#todo-cards li')].some((li) => li.dataset.action === 'medicine'), null, { timeout: 40000 })
      .catch(() => {});
    out.steps.pickup_cards = await patient.locator('#todo-cards li').allInnerTexts();
    await look(patient, out, 'patient-pickup', shots);
    await patient.getByRole('link', { name: '电子处方' }).click();
    await ready(patient);
    const card = patient.locator(`li[data-rx="${rx}"]`);
    await card.waitFor({ timeout: 20000 });
    out.steps.patient_released = await card.getAttribute('data-status');
    await patient.getByRole('button', { name: '出示医保电子凭证' }).click();
    await patient.waitForSelector('#ec-qr');
    const code = await patient.locator('#ec-qr').getAttribute('data-token');
    out.steps.qr = await patient.locator('#ec-qr').evaluate((img) => ({ w: img.naturalWidth, alt: img.alt }));
    await look(patient, out, 'patient-code', shots);

    const pharmacy = await openPage(browser, 'desktop', out);
    await pharmacy.goto(`${base}/pages/rx-pharmacy#token=${opt('pharmacist')}`);
    await ready(pharmacy);
    out.steps.camera = await pharmacy.locator('#camera').isVisible();
    await look(pharmacy, out, 'pharmacy-empty', shots);
    await pharmacy.getByLabel('医保电子凭证码').fill(code);
    await pharmacy.getByRole('button', { name: '读取处方' }).click();
    const held = pharmacy.locator(`#held-list li[data-rx="${rx}"]`);
    await held.waitFor({ timeout: 20000 });
    out.steps.pharmacy_card = await held.innerText();
    await held.locator('button[data-action="reject"]').click();
    out.steps.reject_empty = await held.locator('.error').innerText();
    await look(pharmacy, out, 'pharmacy-authorized', shots);
    await held.locator('button[data-action="pass"]').click();
    await pharmacy.waitForSelector(`#held-list li[data-rx="${rx}"][data-status="reviewed"]`, { timeout: 20000 });
    await pharmacy.locator(`#held-list li[data-rx="${rx}"] button[data-action="dispense"]`).click();
    await pharmacy.waitForSelector(`#held-list li[data-rx="${rx}"][data-status="dispensed"]`, { timeout: 20000 });
    out.steps.pharmacy_done = await pharmacy.locator(`#held-list li[data-rx="${rx}"]`).innerText();
    await look(pharmacy, out, 'pharmacy-dispensed', shots);

    await patient.waitForFunction((id) => document.querySelector(`li[data-rx="${id}"]`)?.dataset.status === 'dispensed', rx, { timeout: 30000 });
    out.steps.patient_after = await patient.locator(`li[data-rx="${rx}"]`).innerText();
    await look(patient, out, 'patient-dispensed', shots);
    await patient.getByRole('link', { name: '首页待办' }).click();
    await ready(patient);
    out.steps.cards_after = await patient.locator('#todo-cards li').allInnerTexts();

    // a second prescription, revoked while unused (an empty reason refused first)
    await doctor.locator('#next-rx').click();
    await ready(doctor);
    await doctor.getByLabel('身份证号').fill(pid);
    await doctor.getByLabel('姓名', { exact: true }).fill('张三');
    await doctor.getByLabel('药品', { exact: true }).selectOption('XC08CAA091A001010100002');
    await doctor.waitForSelector('#rx-form[data-state="passed"]', { timeout: 20000 });
    await doctor.locator('#show-signing').click();
    await doctor.waitForSelector('#signed', { timeout: 20000 });
    const second = (await text(doctor, '#signing-input')).match(/rx_id=(\S+)/)[1];
    await doctor.locator('#upload').click();
    await doctor.waitForSelector('#uploaded', { timeout: 20000 });
    const mine = doctor.locator(`#recent li[data-rx="${second}"]`);
    await mine.waitFor({ timeout: 20000 });
    await mine.getByRole('button', { name: '撤销处方' }).click();
    out.steps.revoke_empty = await mine.locator('.error').innerText();
    await mine.getByLabel('撤销原因').fill('患者要求更换药品');
    await mine.getByRole('button', { name: '撤销处方' }).click();
    await doctor.waitForSelector(`#recent li[data-rx="${second}"][data-status="revoked"]`, { timeout: 20000 });
    out.steps.revoked = await doctor.locator(`#recent li[data-rx="${second}"]`).innerText();
    await look(doctor, out, 'doctor-revoked', shots);
    // large text and high contrast on the desk too: still nothing drawn over anything else
    await doctor.getByRole('button', { name: '大字' }).click();
    await doctor.getByRole('button', { name: '高对比度' }).click();
    await look(doctor, out, 'doctor-large-contrast', shots);
    await pharmacy.getByRole('button', { name: '大字' }).click();
    await look(pharmacy, out, 'pharmacy-large', shots);
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
