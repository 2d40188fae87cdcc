// 我的电子处方: the patient's prescriptions with their states, each one's prescription slip (处方笺, from
// the prescription as rx answers it), how it can be bought (in the hospital, or at an outside designated
// pharmacy once the hospital released it), and the 医保电子凭证 QR code a pharmacy scans, with its
// countdown (the code lives 5 minutes and is renewed before it runs out, as the insurance app does).
// The code comes from the e-credential STAND-IN on the local stage (POST /rx/standin/e-credential).
import qrcode from 'qrcode-generator';
import { api } from './shared/api';
import { announce, busy, clear, frame, h, PATIENT_NAV, showError, when } from './shared/ui';

const POLL_MS = Number(new URLSearchParams(location.search).get('poll_ms')) || 5000;
const STATES: Record<string, [string, string]> = {
  precheck: ['待医生签名', 'warn'], signed: ['已签名待上传', 'warn'], valid: ['有效', 'ok'], released: ['已流转，可院外购药', 'ok'],
  authorized: ['药店已接单', 'ok'], reviewed: ['药师已审核', 'ok'], review_rejected: ['审方未通过', 'err'],
  dispensed: ['已取药', 'ok'], revoked: ['已撤销', 'err'], expired: ['已过期', 'err'],
};
const OPS: Record<string, string> = {
  precheck: '事前审核通过', sign: '医生签名', upload: '上传医保', confirm_external: '流转到院外', confirm_in_hospital: '院内结算',
  authorize: '药店读取凭证', review: '药师审方', dispense: '药店发药', revoke: '医生撤销', expire: '有效期已过', reopen: '可再次购药',
};

const FREQUENCY: Record<string, string> = {
  qd: '每日1次', bid: '每日2次', tid: '每日3次', qid: '每日4次', qn: '每晚1次', qw: '每周1次', prn: '必要时', st: '立即',
};

const { main } = frame('我的电子处方', { nav: PATIENT_NAV });
const slot = h('p', { class: 'error', hidden: true });
const list = h('ul', { class: 'cards', id: 'prescriptions' });
const ec = h('section', { class: 'card', id: 'ecard', 'aria-labelledby': 'ec-h' });
main.append(slot, h('h2', {}, '处方'), list, ec);
let items: any[] = [];
let open: string | null = null;
let lastSeen = '';

function badge(status: string): HTMLElement {
  const [label, tone] = STATES[status] || [status, ''];
  return h('span', { class: `badge ${tone}`, 'data-status': status }, label);
}

// valid and allowed to leave the hospital: the patient chooses where to buy. In the hospital needs no call
// (the cashier settles, then the pharmacy window); outside is POST /rx/me/prescriptions/{id}/release.
const inHospital = new Set<string>();
function choice(rx: any): HTMLElement {
  const err = h('p', { class: 'error', hidden: true });
  const box = h('fieldset', { class: 'choice', 'data-choice': rx.rx_id }, h('legend', {}, '选择购药方式'));
  const here = h('button', { type: 'button', class: 'secondary', 'data-purchase': 'in_hospital', 'aria-pressed': String(inHospital.has(rx.rx_id)),
    onclick: () => { inHospital.add(rx.rx_id); render(); announce('已选择在本院药房取药'); } }, '在本院药房取药');
  const out = h('button', { type: 'button', 'data-purchase': 'external', onclick: async () => {
    busy(out, true);
    try {
      await api('POST', `/rx/me/prescriptions/${encodeURIComponent(rx.rx_id)}/release`);
      inHospital.delete(rx.rx_id);
      announce('处方已流转，可到院外定点药店购药');
      await refresh();
    } catch (e) { showError(err, e); busy(out, false); }
  } }, '到院外定点药店购买');
  box.append(h('div', { class: 'row' }, here, out),
    inHospital.has(rx.rx_id)
      ? h('p', { class: 'small', role: 'status' }, '请到门诊收费处结算（医保报销后付个人部分），然后凭处方到本院药房取药。')
      : h('p', { class: 'small muted' }, '院外购药：处方流转后，到任一医保定点药店出示医保电子凭证即可。'),
    err);
  return box;
}

function purchase(rx: any): HTMLElement {
  if (rx.status === 'valid' && rx.circulation) return choice(rx);
  if (rx.status === 'valid') return h('p', {}, '购药方式：该处方需在本院药房取药（到收费处结算）。');
  if (rx.status === 'released') return h('p', {}, '购药方式：院外购药。到任一医保定点药店，出示下方医保电子凭证二维码即可。');
  if (['authorized', 'reviewed'].includes(rx.status)) return h('p', {}, '药店正在为您配药，请在药店等候。');
  if (rx.status === 'dispensed') return h('p', {}, `已取药（第 ${rx.uses}/${rx.max_uses} 次）。`);
  return h('p', { class: 'muted' }, '该处方不能再用于购药。');
}

function slip(rx: any): HTMLElement {
  return h('div', { class: 'slip', id: `slip-${rx.rx_id}` },
    h('h3', {}, '处方笺'),
    h('table', {},
      h('tbody', {},
        h('tr', {}, h('th', { scope: 'row' }, '患者'), h('td', {}, rx.patient_masked)),
        h('tr', {}, h('th', { scope: 'row' }, '科室 / 医生'), h('td', {}, `${rx.dept_name} / ${rx.doctor_name}`)),
        h('tr', {}, h('th', { scope: 'row' }, '开方时间'), h('td', {}, when(rx.prescribed_at))),
        h('tr', {}, h('th', { scope: 'row' }, '有效期至'), h('td', {}, when(rx.valid_end))),
        h('tr', {}, h('th', { scope: 'row' }, '医保处方编号'), h('td', {}, rx.hi_rxno)))),
    h('h3', {}, 'Rp.'),
    h('ol', {}, rx.drugs.map((d: any) => h('li', {},
      `${d.drug_name} ${d.spec} × ${d.quantity}${d.pack_unit}`,
      h('br'), h('span', { class: 'muted small' }, `每次 ${d.dose}${d.unit}，${FREQUENCY[d.frequency] || d.frequency}，${d.route}，共 ${d.days} 天`)))),
    rx.history.length ? h('h3', {}, '处方进度') : null,
    !rx.history.length ? null : h('ol', { class: 'timeline' }, rx.history.map((t: any, i: number) => h('li', { class: i === rx.history.length - 1 ? 'current' : '' },
      `${OPS[t.op] || t.op} ${when(t.at)}${t.note ? `（${t.note}）` : ''}`))));
}

function render(): void {
  clear(list, items.length ? items.map((rx) => {
    const expanded = open === rx.rx_id;
    const toggle = h('button', { type: 'button', class: 'secondary', 'aria-expanded': String(expanded), 'aria-controls': `slip-${rx.rx_id}`,
      onclick: () => { open = expanded ? null : rx.rx_id; render(); } }, expanded ? '收起处方笺' : '查看处方笺');
    return h('li', { class: 'card', 'data-rx': rx.rx_id, 'data-status': rx.status },
      h('div', { class: 'row spread' }, h('h3', {}, rx.drugs.map((d: any) => d.drug_name).join('、')), badge(rx.status)),
      h('p', { class: 'muted small' }, `${rx.dept_name} ${rx.doctor_name} · 有效期至 ${when(rx.valid_end)}`),
      purchase(rx), toggle, expanded ? slip(rx) : null);
  }) : h('li', { class: 'muted' }, '暂无电子处方。'));
  const showCode = items.some((rx) => rx.status === 'released' || rx.status === 'authorized');
  if (!showCode && ecTimer) { window.clearInterval(ecTimer); ecTimer = 0; }
  if (!showCode && !ecTimer) clear(ec, h('h2', { id: 'ec-h' }, '医保电子凭证'), h('p', { class: 'muted' }, '有可在院外购买的处方时，可在这里出示医保电子凭证。'));
  else if (!ecTimer) clear(ec, h('h2', { id: 'ec-h' }, '医保电子凭证'),
    h('p', {}, '到医保定点药店购药时，请出示二维码给药师扫描。'),
    h('button', { type: 'button', id: 'show-ec', onclick: (e: Event) => showCode_(e.currentTarget as HTMLButtonElement) }, '出示医保电子凭证'));
}

let ecTimer = 0;
async function showCode_(button?: HTMLButtonElement): Promise<void> {
  if (button) busy(button, true);
  try {
    const code = await api('POST', '/rx/standin/e-credential');
    const qr = qrcode(0, 'M');
    qr.addData(code.ec_token);
    qr.make();
    const img = h('img', { class: 'qr', src: qr.createDataURL(6, 2), alt: '医保电子凭证二维码，请药师扫描', id: 'ec-qr', 'data-token': code.ec_token });
    const left = h('p', { class: 'countdown', id: 'ec-countdown', role: 'timer', 'aria-live': 'off' });
    const until = new Date(code.expires_at).getTime();
    window.clearInterval(ecTimer);
    const tick = (): void => {
      const s = Math.max(0, Math.round((until - Date.now()) / 1000));
      left.textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')} 后刷新`;
      if (s === 30) announce('医保电子凭证将在30秒后自动刷新');
      if (s <= 5) { window.clearInterval(ecTimer); void showCode_(); }
    };
    clear(ec, h('h2', { id: 'ec-h' }, '医保电子凭证'),
      h('p', { class: 'notice' }, '本地演示：二维码由医保电子凭证的模拟服务（stand-in）生成。'),
      img, left,
      h('details', {}, h('summary', {}, '无法扫码？显示码值'), h('p', { class: 'small', id: 'ec-text' }, code.ec_token)),
      h('button', { type: 'button', class: 'secondary', onclick: () => { void showCode_(); } }, '立即刷新'));
    ecTimer = window.setInterval(tick, 1000);
    tick();
    announce('已显示医保电子凭证二维码');
  } catch (e) { showError(slot, e); } finally { if (button) busy(button, false); }
}

async function refresh(): Promise<void> {
  try {
    items = (await api('GET', '/rx/me/prescriptions')).items || [];
    const signature = JSON.stringify(items.map((i) => [i.rx_id, i.status, i.history.length]));
    if (signature !== lastSeen) {
      if (lastSeen) announce('处方状态已更新');
      lastSeen = signature;
      render();
    }
    slot.hidden = true;
    document.body.dataset.ready = '1';
  } catch (e) { showError(slot, e); }
}

void refresh();
window.setInterval(() => { if (document.visibilityState === 'visible') void refresh(); }, POLL_MS);
