// 消息通知设置: channels, the kinds the patient does not want, quiet hours (免打扰时段); and the subscribe
// consent as WeChat shows it (wx.requestSubscribeMessage: up to three templates in one sheet, each with
// its own switch, "总是保持以上选择", 取消 / 允许). The answers go to POST /guide/subscriptions exactly as
// the mini-program would send them; each "accept" is one message credit for that template.
import { api } from './shared/api';
import { announce, busy, clear, clearFieldErrors, field, frame, h, PATIENT_NAV, showError } from './shared/ui';
import { restoreDrafts } from './shared/session';

const KINDS: [string, string, boolean][] = [
  ['registration_success', '挂号成功通知', false], ['pending_payment', '待缴费提醒', true],
  ['medicine_pickup', '取药通知', true], ['report_published', '报告发布通知', false],
  ['visit_reminder', '就诊提醒', true], ['preconsult_reminder', '预问诊提醒', false], ['survey', '满意度调查', false],
];
// The local stage's template ids (GUIDE_WECHAT_TEMPLATES on other stages); WeChat shows at most 3 per sheet
const TEMPLATE = (kind: string): string => `local-wx-${kind.replace(/_/g, '-')}`;
const SHEETS: string[][] = [['pending_payment', 'medicine_pickup', 'report_published'], ['visit_reminder', 'registration_success', 'preconsult_reminder'], ['survey']];

const { main } = frame('消息通知设置', { nav: PATIENT_NAV });
const form = h('form', { id: 'prefs', novalidate: true });
const saved = h('p', { class: 'error', hidden: true });
const wechat = h('input', { type: 'checkbox', name: 'wechat', id: 'f-wechat' });
const sms = h('input', { type: 'checkbox', name: 'sms', id: 'f-sms' });
const quietOn = h('input', { type: 'checkbox', name: 'quiet_on', id: 'f-quiet_on' });
const start = h('input', { type: 'time', name: 'start', required: true });
const end = h('input', { type: 'time', name: 'end', required: true });
const muted = KINDS.map(([k, label, urgent]) => ({
  kind: k, box: h('input', { type: 'checkbox', name: `mute-${k}`, id: `f-mute-${k}`, 'data-draft': `mute-${k}` }), label, urgent,
}));
for (const el of [wechat, sms, quietOn]) el.dataset.draft = el.name;
const save = h('button', { type: 'submit' }, '保存设置');
const quietFields = h('div', { class: 'row' }, h('div', { class: 'grow' }, field('开始时间（北京时间）', start)), h('div', { class: 'grow' }, field('结束时间', end)));

form.append(
  h('fieldset', { class: 'card' }, h('legend', {}, '接收渠道'),
    h('div', { class: 'check' }, wechat, h('label', { for: 'f-wechat' }, '微信订阅消息')),
    h('div', { class: 'check' }, sms, h('label', { for: 'f-sms' }, '短信（微信无法送达时）'))),
  h('fieldset', { class: 'card' }, h('legend', {}, '不接收以下消息'),
    muted.map((m) => h('div', { class: 'check' }, m.box, h('label', { for: m.box.id }, m.label, m.urgent ? h('span', { class: 'muted small' }, '（紧急消息，免打扰时段也会发送）') : null)))),
  h('fieldset', { class: 'card' }, h('legend', {}, '免打扰时段'),
    h('div', { class: 'check' }, quietOn, h('label', { for: 'f-quiet_on' }, '开启免打扰（时段内的非紧急消息延后到结束时发送）')),
    quietFields),
  saved, save);

function fill(p: any): void {
  wechat.checked = !!p.wechat; sms.checked = !!p.sms;
  for (const m of muted) m.box.checked = (p.muted || []).includes(m.kind);
  quietOn.checked = !!p.quiet_hours;
  start.value = p.quiet_hours?.start || '22:00'; end.value = p.quiet_hours?.end || '08:00';
  quietFields.hidden = !quietOn.checked;
}
quietOn.addEventListener('input', () => { quietFields.hidden = !quietOn.checked; });
quietOn.addEventListener('change', () => { quietFields.hidden = !quietOn.checked; });

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  clearFieldErrors(form); saved.hidden = true;
  const body = {
    wechat: wechat.checked, sms: sms.checked, muted: muted.filter((m) => m.box.checked).map((m) => m.kind),
    quiet_hours: quietOn.checked ? { start: start.value, end: end.value } : null,
  };
  busy(save, true);
  try {
    fill(await api('PUT', '/guide/preferences', body));
    saved.hidden = false; saved.removeAttribute('role'); saved.className = 'notice'; saved.textContent = '已保存。';
    announce('通知设置已保存');
  } catch (err) {
    saved.className = 'error';
    showError(saved, err, form, (f) => (f.endsWith('.start') ? 'start' : f.endsWith('.end') ? 'end' : f.split('.').pop() || null));
  } finally { busy(save, false); }
});

// -- the subscribe sheet, as WeChat draws it -------------------------------------------------------------
const ledger = h('ul', { id: 'ledger', class: 'cards' });
const subSlot = h('p', { class: 'error', hidden: true });
const dialog = h('dialog', { id: 'subscribe', 'aria-labelledby': 'sub-h' });
let sheet = 0;
function openSheet(): void {
  const kinds = SHEETS[sheet % SHEETS.length];
  const switches = kinds.map((k) => ({ k, box: h('input', { type: 'checkbox', role: 'switch', id: `s-${k}`, checked: true }) }));
  const keep = h('input', { type: 'checkbox', id: 's-keep' });
  clear(dialog,
    h('h2', { id: 'sub-h' }, '便捷就医 申请'),
    h('p', {}, '发送以下消息给你（每次允许可收到一条）'),
    switches.map(({ k, box }) => h('div', { class: 'check' }, box, h('label', { for: box.id }, KINDS.find((x) => x[0] === k)?.[1] || k))),
    h('div', { class: 'check small' }, keep, h('label', { for: 's-keep' }, '总是保持以上选择，不再询问')),
    h('div', { class: 'row spread' },
      h('button', { type: 'button', class: 'secondary', onclick: () => answer(Object.fromEntries(kinds.map((k) => [TEMPLATE(k), 'reject']))) }, '取消'),
      h('button', { type: 'button', id: 's-allow', onclick: () => answer(Object.fromEntries(switches.map(({ k, box }) => [TEMPLATE(k), box.checked ? 'accept' : 'reject']))) }, '允许')));
  dialog.showModal();
}
async function answer(results: Record<string, string>): Promise<void> {
  dialog.close();
  sheet += 1;
  subSlot.hidden = true;
  try {
    const out = await api('POST', '/guide/subscriptions', { results });
    showLedger(out.ledgers || []);
    announce('订阅结果已记录');
  } catch (err) { showError(subSlot, err); }
}
function showLedger(rows: any[]): void {
  clear(ledger, rows.map((r) => h('li', { class: 'card row spread' },
    h('span', {}, KINDS.find((x) => x[0] === r.kind)?.[1] || r.kind),
    h('span', { class: r.banned ? 'badge err' : 'badge ok' }, r.banned ? '已拒收' : `可接收 ${r.credits} 条`))));
}

main.append(
  h('h2', {}, '通知设置'), form,
  h('h2', {}, '微信订阅消息'),
  h('p', { class: 'muted' }, '微信每次只允许发送一条订阅消息，点“订阅消息”在微信弹窗中选择允许。'),
  h('button', { type: 'button', id: 'open-subscribe', class: 'secondary', onclick: openSheet }, '订阅消息'),
  subSlot, ledger, dialog);

(async () => {
  try {
    fill(await api('GET', '/guide/preferences'));
    if (restoreDrafts()) announce('已恢复您登录前填写的内容');
    quietFields.hidden = !quietOn.checked;
    document.body.dataset.ready = '1';
  } catch (err) { showError(saved, err); }
})();
