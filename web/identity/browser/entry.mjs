// The 随申办 entry end to end in headless Chromium against a running stack, as a new resident would use
// it. Prints one JSON object (the shared shape of web/pages/browser: errors, CSP violations, looks, steps).
//   node entry.mjs entry --base URL --card GOOD_CARD_NO --rp-secret DEMO_HOSPITAL_WEB_SECRET [--chromium PATH] [--shots DIR]
// The hospitals' own sites are not on this machine: requests to https://demo-hospital.example and
// https://hospital-b.example are answered by the flow, which plays the hospital: 示范医院 (an OIDC
// relying party) answers third-party-initiated login by starting its own code flow with the provider,
// so the test sees whether the person lands there logged in without a login page.
import { createHash, randomBytes } from 'node:crypto';
import { launch, look, newOut, openPage, options, ready } from '../../pages/browser/lib.mjs';

const { flow, opt } = options(process.argv);
const base = opt('base');
const shots = opt('shots');
const out = newOut();
const browser = await launch(opt('chromium'));
const text = (page, sel) => page.locator(sel).innerText();
const b64url = (buf) => buf.toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const HOSPITAL_RP = { client_id: 'demo-hospital-web', redirect_uri: 'https://demo-hospital.example/oidc/callback' };

/** Plays the two hospitals' sites in this page's context; what they received lands in `seen`. */
async function hospitals(page, seen) {
  const verifier = b64url(randomBytes(48));
  seen.hospital_rp = { verifier };
  await page.context().route('https://hospital-b.example/**', (route) => {
    seen.hospital_b = route.request().url();
    return route.fulfill({ contentType: 'text/html; charset=utf-8', body: '<!doctype html><html lang="zh-CN"><title>第二医院</title><main><h1>第二医院互联网医院（测试替身）</h1></main></html>' });
  });
  await page.context().route('https://demo-hospital.example/**', async (route) => {
    const url = new URL(route.request().url());
    if (url.pathname === '/oidc/initiate') {
      // OIDC Core 4: the hospital starts its own authorization request at the issuer it was given. It is
      // made with this browser's cookies (the context's request client: the redirect to the hospital's
      // callback would otherwise leave the routed hosts); a login page would be a 302 to /identity/login
      seen.initiate = Object.fromEntries(url.searchParams);
      const q = new URLSearchParams({
        response_type: 'code', ...HOSPITAL_RP, scope: 'openid', state: 'hosp-state', nonce: 'hosp-nonce',
        login_hint: url.searchParams.get('login_hint'),
        code_challenge: b64url(createHash('sha256').update(verifier).digest()), code_challenge_method: 'S256',
      });
      const answer = await page.context().request.get(`${url.searchParams.get('iss')}/authorize?${q}`, { maxRedirects: 0 });
      seen.hospital_rp.authorize = { status: answer.status(), location: answer.headers().location || '' };
      const back = new URL(seen.hospital_rp.authorize.location || 'about:blank');
      seen.hospital_rp.callback = Object.fromEntries(back.searchParams);
      // the hospital's backend redeems the code at once (codes live 60 s), with its own credentials
      const redeemed = await fetch(`${url.searchParams.get('iss')}/token`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded',
          Authorization: `Basic ${Buffer.from(`${HOSPITAL_RP.client_id}:${opt('rp-secret')}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'authorization_code', code: seen.hospital_rp.callback.code || '',
          code_verifier: verifier, redirect_uri: HOSPITAL_RP.redirect_uri }),
      });
      seen.hospital_rp.token_status = redeemed.status;
      const body = await redeemed.json();
      seen.hospital_rp.id_token = body.id_token || null;
      return route.fulfill({ contentType: 'text/html; charset=utf-8', body: '<!doctype html><html lang="zh-CN"><title>示范医院</title><main><h1>示范医院互联网医院（测试替身）</h1></main></html>' });
    }
    return route.fulfill({ status: 404, body: 'not here' });
  });
}

/** From the entry's 登录 button through the provider and a stand-in IdP back to the entry. */
async function login(page, upstream, who, name) {
  await page.getByRole('button', { name: '登录 / 注册' }).click();
  await page.waitForURL('**/identity/login?*');
  if (name) await look(page, out, name, shots);
  await page.getByRole('link', { name: upstream }).click();
  await page.waitForURL('**/identity/standin/**');
  const paths = [];
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) paths.push(new URL(f.url()).pathname); });
  await page.getByRole('link', { name: new RegExp(`^${who}`) }).click();
  return paths;
}

async function consentIfAsked(page, name) {
  await page.waitForURL((u) => u.pathname === '/identity/consent' || u.pathname === '/pages/entry', { timeout: 20000 });
  if (new URL(page.url()).pathname === '/identity/consent') {
    out.steps[`${name}_consent_page`] = await page.locator('body').innerText();
    await look(page, out, `${name}-consent-page`, shots).catch(() => {});
    await page.getByRole('button', { name: '同意并继续' }).click();
  }
  await page.waitForURL('**/pages/entry');
  await ready(page);
}

/** 进入…互联网医院; the consent dialog when the person has not agreed to share with that hospital yet. */
async function enter(page, name, shot) {
  await page.getByRole('button', { name: `进入${name}互联网医院` }).click();
  const dialog = await page.waitForSelector('dialog[open]', { timeout: 5000 }).catch(() => null);
  if (!dialog) return;
  out.steps[`consent_${name}`] = await page.locator('dialog[open]').innerText();
  if (shot) await look(page, out, shot, shots);
  await page.getByRole('button', { name: '同意并进入' }).click();
}

const flows = {
  async entry() {
    const page = await openPage(browser, 'phone', out);
    const seen = {};
    if (opt('debug')) page.on('request', (r) => console.error('REQ', r.url().slice(0, 120), r.isNavigationRequest()));
    if (opt('debug')) page.on('requestfailed', (r) => console.error('FAIL', r.url().slice(0, 120), r.failure()?.errorText));
    await hospitals(page, seen);
    await page.goto(`${base}/pages/entry?channel=h5`);
    await ready(page);
    out.steps.anon_hospitals = await page.locator('#hospitals li h3').allInnerTexts();
    out.steps.stray_text = await page.evaluate(() => [...document.getElementById('app').childNodes]
      .filter((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim()).map((n) => n.textContent));
    await look(page, out, 'entry-anonymous', shots);

    // 1. login through the 随申办 stand-in: the provider's login page, the stand-in, consent, the callback
    await login(page, '随申办登录', '张三', 'provider-login');
    await consentIfAsked(page, 'first');
    out.steps.who = await text(page, '#who');
    out.steps.token_client = await page.evaluate(() => JSON.parse(atob(sessionStorage.getItem('bianjie.token').split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).extra?.client_id);
    out.steps.person_first = await page.evaluate(async () => (await (await fetch('/identity/me', { headers: { Authorization: `Bearer ${sessionStorage.getItem('bianjie.token')}` } })).json()).person_id);
    await look(page, out, 'entry-logged-in', shots);

    // 2. pick 第二医院 (no OIDC: a launch ticket); its services: built ones link, the rest say 即将上线
    await page.getByRole('button', { name: /选择\s*第二医院/ }).click();
    await page.waitForSelector('#services li');
    out.steps.b_services = await page.locator('#services li').evaluateAll((ls) => ls.map((l) => ({
      key: l.dataset.serviceCard, text: l.innerText.replace(/\s+/g, ' '), href: l.querySelector('a')?.getAttribute('href') || null })));
    await look(page, out, 'hospital-b', shots);
    await enter(page, '第二医院', 'consent-dialog');
    await page.waitForURL('https://hospital-b.example/**');
    out.steps.hospital_b_url = page.url(); // the ticket rides in the fragment, which no request carries
    out.steps.hospital_b_request = seen.hospital_b;

    // 3. back to the entry: 示范医院 (an OIDC relying party): third-party-initiated login, no second login
    await page.goto(`${base}/pages/entry`);
    await ready(page);
    await page.getByRole('button', { name: /选择\s*示范医院/ }).click();
    await enter(page, '示范医院');
    await page.waitForURL('https://demo-hospital.example/oidc/initiate**');
    out.steps.initiate = seen.initiate;
    out.steps.hospital_rp = seen.hospital_rp;

    // 4. bind a 医保电子凭证: someone else's card is refused at the form, the person's own is bound
    await page.goto(`${base}/pages/entry`);
    await ready(page);
    await page.getByLabel('医院', { exact: true }).selectOption('demo-hospital');
    await page.getByLabel('卡证类型', { exact: true }).selectOption('medical_insurance');
    await page.getByLabel('卡号', { exact: true }).fill('YB00000000');
    await page.getByRole('button', { name: '绑定' }).click();
    await page.waitForSelector('#bind-error[role="alert"]:not([hidden])');
    out.steps.bind_refused = await text(page, '#bind-error');
    await look(page, out, 'bind-refused', shots);
    await page.getByLabel('卡号', { exact: true }).fill(opt('card'));
    await page.getByRole('button', { name: '绑定' }).click();
    await page.waitForFunction(() => document.querySelector('#cards .badge.ok'));
    out.steps.cards = await page.locator('#cards li').allInnerTexts();
    out.steps.linked = await page.locator('#linked li').allInnerTexts();
    await look(page, out, 'cards', shots);

    // 4b. 云影像: 示范医院's 云影像 lists the person's own studies (我的影像); one opens in the cloud-film viewer
    await page.getByRole('button', { name: '打开云影像' }).click();
    await page.waitForSelector('#studies li');
    out.steps.film_studies = await page.locator('#studies li').evaluateAll((ls) => ls.map((l) => ({
      study: l.dataset.studyCard || null, text: l.innerText.replace(/\s+/g, ' ') })));
    await look(page, out, 'my-studies', shots);
    await page.locator('#studies button[data-study]').first().click();
    await page.waitForURL('**/film/v/**');
    out.steps.viewer_url = page.url();
    await page.waitForFunction(() => window.FILM && window.FILM.marks && window.FILM.marks.first_image, null, { timeout: 30000 });
    out.steps.viewer_study = await page.evaluate(() => window.FILM.manifest?.study?.study_uid || null);
    out.steps.viewer_text = (await page.locator('body').innerText()).replace(/\s+/g, ' ').slice(0, 400);

    // 4c. withdraw 第二医院's consent: the list says so, the launch asks again, the old exchange is refused
    await page.goto(`${base}/pages/entry`);
    await ready(page);
    const before = await page.evaluate(async () => {
      const auth = { Authorization: `Bearer ${sessionStorage.getItem('bianjie.token')}` };
      return (await (await fetch('/identity/launch/hospital-b?channel=h5', { headers: auth })).json()).exchange;
    });
    out.steps.consents_before = await page.locator('#consents li').allInnerTexts();
    await page.getByRole('button', { name: '撤回授权：第二医院' }).click();
    await page.waitForSelector('dialog[open]');
    out.steps.withdraw_dialog = await page.locator('dialog[open]').innerText();
    await look(page, out, 'withdraw-dialog', shots);
    await page.getByRole('button', { name: '确认撤回' }).click();
    await page.waitForFunction(() => !document.querySelector('[data-consent="hospital-b"]'));
    out.steps.consents_after = await page.locator('#consents li').allInnerTexts();
    await look(page, out, 'consent-withdrawn', shots);
    out.steps.exchange_after_withdraw = await page.evaluate(async (ex) => {
      const form = new URLSearchParams({ grant_type: ex.grant_type, subject_token: sessionStorage.getItem('bianjie.token'),
        subject_token_type: ex.subject_token_type, requested_token_type: ex.requested_token_type, audience: ex.audience,
        channel: ex.channel, client_id: 'bianjie-entry' });
      const r = await fetch(new URL(ex.token_endpoint).pathname, { method: 'POST', body: form,
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
      return { status: r.status, body: await r.json() };
    }, before);
    await page.getByRole('button', { name: /选择\s*第二医院/ }).click();
    await page.getByRole('button', { name: '进入第二医院互联网医院' }).click();
    await page.waitForSelector('dialog[open]');
    out.steps.asked_again = await page.locator('dialog[open]').innerText();
    await page.getByRole('button', { name: '不同意' }).click();
    await page.waitForSelector('#launch-result p');
    out.steps.declined = await text(page, '#launch-result');
    await page.getByRole('button', { name: /选择\s*示范医院/ }).click();

    // 5. pay-later from the entry: 示范医院's 先诊疗后付费 opens the pay pages with the same sign-in
    await page.getByRole('link', { name: '打开先诊疗后付费' }).click();
    await page.waitForURL('**/pages/pay');
    await ready(page);
    out.steps.pay_url = page.url();
    await page.locator('a[data-sign="UNIONPAY"]').click();
    await ready(page);
    await page.getByLabel('银行卡号').fill('6222000000001234');
    await page.getByLabel(/我已阅读并同意/).check();
    await page.getByRole('button', { name: '同意协议并签约' }).click();
    await page.waitForURL('**/pages/pay');
    await ready(page);
    out.steps.agreements = await page.locator('#agreements li').evaluateAll((ls) => ls.map((l) => l.dataset.channel));
    await look(page, out, 'pay-from-entry', shots);
    // the sign-in runs out on the pay page: 去登录 rides the provider's session back, no login page
    await page.evaluate(() => sessionStorage.setItem('bianjie.token', 'expired.token.value'));
    await page.reload();
    await page.waitForURL('**/pages/login');
    await ready(page);
    const relogin = [];
    const onNav = (f) => { if (f === page.mainFrame()) relogin.push(new URL(f.url()).pathname); };
    page.on('framenavigated', onNav);
    await page.getByRole('link', { name: '去登录' }).click();
    await page.waitForURL('**/pages/pay');
    await ready(page);
    page.off('framenavigated', onNav);
    out.steps.relogin_paths = relogin;

    // 6. logout at the entry
    await page.goto(`${base}/pages/entry`);
    await ready(page);
    await page.getByRole('button', { name: '退出登录' }).click();
    await page.waitForURL('**/pages/entry');
    await ready(page);
    out.steps.after_logout = await text(page, '#who');

    // 7. WeChat in a new browser: first time it asks for one real-name login (which links it) ...
    const wx = await openPage(browser, 'phone', out);
    await wx.goto(`${base}/pages/entry`);
    await ready(wx);
    await login(wx, '微信登录', '张三');
    await wx.waitForURL('**/identity/callback/wechat**');
    out.steps.wechat_first = await wx.locator('body').innerText();
    await look(wx, out, 'wechat-link-needed', shots).catch(() => {});
    await wx.getByRole('link', { name: '随申办实名登录' }).click();
    await wx.getByRole('link', { name: /^张三/ }).click();
    await consentIfAsked(wx, 'linked');
    // ... and in another new browser WeChat alone reaches the same person
    const wx2 = await openPage(browser, 'phone', out);
    await wx2.goto(`${base}/pages/entry`);
    await ready(wx2);
    const wxPaths = await login(wx2, '微信登录', '张三');
    await consentIfAsked(wx2, 'wechat');
    out.steps.wechat_paths = wxPaths;
    out.steps.wechat_who = await text(wx2, '#who');
    out.steps.wechat_accounts = await text(wx2, '#accounts');
    out.steps.person_wechat = await wx2.evaluate(async () => (await (await fetch('/identity/me', { headers: { Authorization: `Bearer ${sessionStorage.getItem('bianjie.token')}` } })).json()).person_id);
    await look(wx2, out, 'entry-wechat', shots);

    // 8. opened inside WeChat (?channel=wechat): 第二医院's mini program, its appId and page, with a ticket
    await wx2.goto(`${base}/pages/entry?channel=wechat`);
    await ready(wx2);
    await wx2.getByRole('button', { name: /选择\s*第二医院/ }).click();
    await enter(wx2, '第二医院');
    await wx2.waitForSelector('#mini-program');
    out.steps.mini_program = await text(wx2, '#mini-program');
    out.steps.mini_path = await wx2.locator('[data-mini-path]').getAttribute('data-mini-path');
    await look(wx2, out, 'mini-program', shots);
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
