// The consult pages end to end in headless Chromium against a running stack. Prints one JSON object.
//   node flows.mjs mdt --base URL --tokens '{"A001":..,"B001":..,"B002":..,"C001":..,"admin":..}' [--chromium PATH] [--shots DIR]
// A001 (desktop) applies with B001 and B002 (first with empty fields: the Chinese messages), both accept
// (B001 on a tablet-sized desktop, B002 on a phone), A001 enters the room and ends the meeting, both
// write and sign their reports, A001 sees both; C001 gets "not found"; the admin page lists the agreement.
import { launch, look, newOut, openPage, options, ready } from '../../pages/browser/lib.mjs';

const { flow, opt } = options(process.argv);
const base = opt('base');
const shots = opt('shots');
const tokens = JSON.parse(opt('tokens') || '{}');
const out = newOut();
const browser = await launch(opt('chromium'));

async function open(who, path, size = 'desktop') {
  const page = await openPage(browser, size, out);
  const [p, q] = path.split('?');
  await page.goto(`${base}/pages/${p}${q ? `?${q}` : ''}#token=${tokens[who]}`);
  await ready(page);
  return page;
}

async function press(page, name) {
  await page.getByRole('button', { name, exact: true }).click();
  await page.waitForFunction((n) => !document.querySelector('[aria-busy="true"]'), name, { timeout: 20000 });
  await ready(page);
}

async function status(page) {
  return page.locator('#case .badge[data-status]').first().getAttribute('data-status');
}

const flows = {
  async mdt() {
    // -- A001 applies
    const a = await open('A001', 'consult-apply');
    await look(a, out, 'apply-empty', shots);
    await a.getByRole('button', { name: '提交会诊申请' }).click();
    out.steps.empty_errors = await a.locator('.field-error:not([hidden])').allInnerTexts();
    out.steps.empty_summary = await a.locator('p.error').innerText();
    await look(a, out, 'apply-errors', shots);
    await a.locator('input[data-doctor="B001"]').check();
    await a.locator('input[data-doctor="B002"]').check();
    const soon = new Date(Date.now() + 10 * 60000);
    const day = soon.toLocaleDateString('sv-SE', { timeZone: 'Asia/Shanghai' });
    const time = soon.toLocaleTimeString('sv-SE', { timeZone: 'Asia/Shanghai', hour: '2-digit', minute: '2-digit' });
    await a.getByLabel('会诊日期').fill(day);
    await a.getByLabel('开始时间（北京时间）').fill(time);
    await a.getByLabel('会诊时长').selectOption('45');
    await a.getByLabel('患者姓名').fill('王小明');
    await a.getByLabel('身份证号').fill('12345');
    await a.getByLabel('问诊记录编号').fill('V-WEB-1');
    await a.getByLabel('就诊日期').fill(day);
    await a.getByLabel('就诊科室').fill('肿瘤科');
    await a.getByLabel('问诊记录摘要').fill('胸部CT示左肺下叶磨玻璃结节');
    await a.getByLabel('会诊目的').fill('左肺结节诊疗方案');
    await a.getByLabel('症状描述').fill('体检发现，无明显症状');
    await a.getByLabel('诊断难点').fill('磨玻璃结节是否需要手术');
    await a.getByLabel('初步诊断').fill('左肺下叶磨玻璃结节');
    await a.getByLabel('同意书编号').fill('ZQTY-WEB-001');
    await a.getByRole('button', { name: '提交会诊申请' }).click();
    out.steps.id_error = await a.locator('.field[data-field="id_number"] .field-error').innerText();
    await a.getByLabel('身份证号').fill('310101199001011234');
    await Promise.all([a.waitForURL(/consult-detail/, { timeout: 30000 }), a.getByRole('button', { name: '提交会诊申请' }).click()]);
    await ready(a);
    const id = new URL(a.url()).searchParams.get('id');
    out.steps.consultation_id = id;
    out.steps.after_apply = await status(a);
    await look(a, out, 'detail-scheduled', shots);

    // -- both invitees accept
    const b1 = await open('B001', `consult-detail?id=${id}`);
    await press(b1, '接受邀请');
    const b2 = await open('B002', `consult-detail?id=${id}`, 'phone');
    await look(b2, out, 'detail-phone-invitee', shots);
    await press(b2, '接受邀请');
    out.steps.answers = await b2.locator('#participants li').evaluateAll((l) => l.map((x) => x.dataset.answer));

    // -- the meeting
    await a.reload(); await ready(a);
    await press(a, '进入会诊室');
    out.steps.after_join = await status(a);
    out.steps.room_announced = await a.locator('#live').textContent();
    await press(a, '结束会诊');
    out.steps.after_end = await status(a);

    // -- reports
    for (const [page, text] of [[b1, '考虑原位腺癌可能，建议随访三个月复查'], [b2, '同意随访，如增大行胸腔镜楔形切除']]) {
      await page.reload(); await ready(page);
      await page.getByLabel('诊断意见').fill(text);
      await press(page, '保存草稿');
      await press(page, '签名提交');
    }
    out.steps.b2_after_sign = await status(b2);
    await look(b2, out, 'detail-phone-signed', shots);
    await a.reload(); await ready(a);
    out.steps.final = await status(a);
    out.steps.reports = await a.locator('#reports article').evaluateAll((l) => l.map((x) => [x.dataset.doctor, x.dataset.reportStatus]));
    await look(a, out, 'detail-completed', shots);

    // -- the records lists
    const r = await open('A001', 'consult-records?status=completed');
    out.steps.records = await r.locator('#records li[data-consultation]').evaluateAll((l) => l.map((x) => x.dataset.consultation));
    out.steps.tabs = await r.locator('[data-state]').allInnerTexts();
    await look(r, out, 'records', shots);

    // -- hospital C
    const c = await open('C001', `consult-detail?id=${id}`);
    out.steps.c_error = await c.locator('p.error').innerText();

    // -- admin
    const admin = await open('admin', 'consult-admin');
    out.steps.agreements = await admin.locator('#agreements li[data-agreement]').count();
    await look(admin, out, 'admin', shots);
  },
};

try {
  await flows[flow]();
  out.ok = true;
} catch (e) {
  out.failure = String(e).slice(0, 600);
} finally {
  await browser.close();
  console.log(JSON.stringify(out));
}
