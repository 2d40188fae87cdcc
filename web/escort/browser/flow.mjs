// 云陪诊 end to end in headless Chromium at a phone size, against a running stack. Prints one JSON object.
//   node flow.mjs --base URL --token PATIENT_TOKEN --operator STAFF_TOKEN --visit VISIT [--chromium PATH] [--shots DIR]
// invite (patient) -> open the link from the SMS stand-in's outbox (companion, another browser context) ->
// phone code from the outbox, invitation code from the patient's page -> room; prints "READY {...}" and
// waits for a line on stdin (the test posts a guidance event), checks the room moved by itself; then the
// patient revokes and the open room says so.
import { launch, look, newOut, nextLine, openPage, options, ready } from '../../pages/browser/lib.mjs';

const { opt } = options(['', '', 'escort', ...process.argv.slice(2)]);
const base = opt('base');
const shots = opt('shots');
const out = newOut();
const browser = await launch(opt('chromium'));

async function outbox(pattern) {
  const r = await fetch(`${base}/escort/outbox?limit=50`, { headers: { Authorization: `Bearer ${opt('operator')}` } });
  const body = await r.json();
  return (body.messages || []).map((m) => m.text).filter((t) => pattern.test(t));
}

async function until(fn, timeout = 20000) {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > timeout) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 300));
  }
}

try {
  const patient = await openPage(browser, 'phone', out);
  await patient.goto(`${base}/pages/escort-invite#token=${opt('token')}&visit=${opt('visit')}`);
  await ready(patient);
  out.steps.visit_selected = await patient.locator('#f-visit_id').inputValue();
  await look(patient, out, 'invite', shots);
  await patient.getByLabel('陪诊人姓名').fill('王芳');
  await patient.getByLabel('陪诊人手机号').fill('13912345678');
  await patient.getByLabel('与您的关系').selectOption('child');
  await patient.getByRole('button', { name: '发送邀请' }).click();
  await patient.waitForSelector('#invitation-code');
  const code = (await patient.locator('#invitation-code').innerText()).trim();
  const link = await patient.locator('#invite-link').getAttribute('href');
  out.steps.qr_loaded = await patient.locator('#qr').evaluate((img) => img.complete && img.naturalWidth > 0);
  out.steps.code_length = code.length;
  await look(patient, out, 'invite-result', shots);

  const texts = await until(() => outbox(/邀请您参加云陪诊/));
  out.steps.sms_has_link = texts.some((t) => t.includes(link));

  const companion = await openPage(browser, 'phone', out);
  await companion.goto(link);
  await ready(companion);
  out.steps.handle_left_address_bar = !companion.url().includes('#h=');
  await companion.waitForSelector('#join-form:not([hidden])');
  await look(companion, out, 'join', shots);
  await companion.getByLabel('您的手机号').fill('13912345678');
  await companion.getByRole('button', { name: '获取验证码' }).click();
  const otpText = await until(async () => (await outbox(/验证码为\d{6}/))[0]);
  const otp = otpText.match(/验证码为(\d{6})/)[1];
  // the SMS reaches the outbox before the page has the answer: wait for the page to start its cooldown
  out.steps.resend_disabled = await until(() => companion.locator('#send-otp').isDisabled(), 10000).catch(() => false);
  await companion.getByLabel('短信验证码').fill(otp);
  await companion.getByLabel('邀请码').fill(code);
  await companion.getByRole('button', { name: '加入陪诊' }).click();
  await companion.waitForURL(/\/pages\/escort-room$/);
  await ready(companion);
  await companion.waitForSelector('#state');
  out.steps.before = { state: await companion.locator('#state').innerText(), shared: await companion.locator('#shared').innerText() };
  await look(companion, out, 'room', shots);
  console.log(`READY ${JSON.stringify(out.steps.before)}`);
  await nextLine();
  await companion.waitForFunction(() => /前面还有 2 人/.test(document.querySelector('#queue')?.textContent || ''), null, { timeout: 30000 });
  out.steps.after = { state: await companion.locator('#state').innerText(), queue: await companion.locator('#queue').innerText(),
    notice: await companion.locator('#notices li').first().innerText(), shared: await companion.locator('#shared').innerText() };
  await look(companion, out, 'room-updated', shots);

  await patient.waitForSelector('[data-revoke]');
  out.steps.listed = await patient.locator('#companions li').first().innerText();
  await patient.locator('[data-revoke]').first().click();
  await patient.waitForSelector('[data-status="revoked"]');
  await companion.waitForSelector('#ended:not([hidden])', { timeout: 15000 });
  out.steps.revoked = { text: await companion.locator('#ended').innerText(), code: await companion.locator('#ended').getAttribute('data-code') };
  await look(companion, out, 'room-revoked', shots);
  out.ok = true;
} catch (e) {
  out.errors.push(String(e).slice(0, 500));
} finally {
  await browser.close();
  console.log(JSON.stringify(out));
}
