// 医生开方台 (staff desk, desktop): the doctor fills a prescription; rx's pre-check (POST /rx/precheck) runs
// as they type (debounced) and every problem is shown at its field in Chinese; 签名 shows what is signed
// (GET .../document: signing_input, content and PDF digests), signs it with the doctor's SM2 key in the
// browser and shows the service's verification; 上传 sends it to the insurance center (POST /rx/prescriptions);
// a prescription not used yet can be revoked (POST .../revoke).
//
// The key: on the local stage the banner link brings the demo doctor's private key in the fragment (a
// STAND-IN of the doctor's USB key, marked 本地演示); it stays in this tab's sessionStorage. A hospital
// wires its own USB-key middleware here instead.
import { sm2 } from 'sm-crypto';
import { api, ApiError } from './shared/api';
import { DRUGS, FREQUENCIES, RULES, badge, drugTable, summary } from './shared/rxdesk';
import { claims } from './shared/session';
import { announce, busy, clear, clearFieldErrors, field, frame, h, setFieldError, showError } from './shared/ui';

const KEY = 'bianjie.rx.doctor_key';
const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.get('key')) sessionStorage.setItem(KEY, fragment.get('key') as string);
const profile = { name: fragment.get('name') || '', dept_code: fragment.get('dept') || '', dept_name: fragment.get('dept_name') || '' };
if (fragment.get('name')) sessionStorage.setItem('bianjie.rx.doctor', JSON.stringify(profile));
const doctor = { ...profile, ...JSON.parse(sessionStorage.getItem('bianjie.rx.doctor') || '{}') };

const { main } = frame('医生开方台（电子处方）', { wide: true });
const code = String(claims().sub || '');
const slot = h('p', { class: 'error', hidden: true, id: 'form-error' });
const status = h('p', { id: 'precheck-status', role: 'status', class: 'muted' }, '填写完整后自动进行事前审核。');
const form = h('form', { id: 'rx-form', novalidate: true, 'aria-describedby': 'precheck-status' });
const lines = h('div', { id: 'lines' });
const step = h('section', { class: 'card', id: 'step', 'aria-labelledby': 'step-h' });
const recent = h('ul', { class: 'cards', id: 'recent' });
let lineCount = 0;
let rxno = newNumber();
let current: any = null; // the pre-check's answer, then the prescription as the steps move it
let timer = 0;
let seq = 0;

function newNumber(): string {
  return `HRX-${new Date().toISOString().slice(0, 10).replace(/-/g, '')}-${Math.random().toString(36).slice(2, 8).toUpperCase()}`;
}

function input(name: string, attrs: Record<string, string> = {}): HTMLInputElement {
  return h('input', { name, id: `f-${name.replace('.', '-')}`, autocomplete: 'off', ...attrs });
}

function select(name: string, options: [string, string][], value = ''): HTMLSelectElement {
  const el = h('select', { name, id: `f-${name.replace('.', '-')}` }, options.map(([v, t]) => h('option', { value: v, selected: v === value }, t)));
  return el;
}

function addLine(): void {
  if (lineCount >= 5) return;
  lineCount += 1;
  const n = lineCount;
  lines.append(h('fieldset', { class: 'card line', 'data-line': String(n) },
    h('legend', {}, `药品 ${n}`),
    h('div', { class: 'grid' },
      field('药品', select(`l${n}.med_code`, [['', '请选择药品'], ...DRUGS])),
      field('数量（盒/瓶）', input(`l${n}.quantity`, { type: 'number', min: '1', value: '2', inputmode: 'numeric' })),
      field('每次用量', input(`l${n}.dose`, { type: 'number', min: '0', step: 'any', value: '1' }), '片、粒或单位'),
      field('频次', select(`l${n}.frequency`, FREQUENCIES, 'bid')),
      field('天数', input(`l${n}.days`, { type: 'number', min: '1', value: '7', inputmode: 'numeric' })))));
}

main.append(
  h('p', { class: 'muted' }, `医生 ${doctor.name || code}（${code}）${doctor.dept_name ? ` · ${doctor.dept_name}` : ''}`),
  h('div', { class: 'desk' },
    h('section', { 'aria-labelledby': 'form-h' },
      h('h2', { id: 'form-h' }, '开具处方'),
      form),
    h('div', {}, step, h('h2', {}, '本院近期处方'), recent)));

form.append(
  h('p', { class: 'small muted' }, '处方编号 ', h('span', { id: 'hosp-rxno' }, rxno)),
  h('fieldset', { class: 'card' }, h('legend', {}, '患者（参保人）'),
    h('div', { class: 'grid' },
      field('身份证号', input('cert_no', { inputmode: 'text', maxlength: '18' }), '18 位居民身份证号'),
      field('姓名', input('name')),
      field('就诊号', input('visit_id', { value: `MD${Date.now().toString().slice(-8)}` })))),
  h('fieldset', { class: 'card' }, h('legend', {}, '诊断'),
    h('div', { class: 'grid' },
      field('诊断编码（ICD-10）', input('diag_code', { value: 'E11.900' })),
      field('诊断名称', input('diag_name', { value: '2型糖尿病' })))),
  h('fieldset', { class: 'card' }, h('legend', {}, '处方'),
    h('div', { class: 'grid' },
      field('处方类别', select('rx_type', [['1', '西药'], ['2', '中成药']])),
      field('有效天数', input('valid_days', { type: 'number', min: '1', value: '3' }), '普通处方最长 3 天'),
      h('div', { class: 'field check', 'data-field': 'circulation' },
        h('input', { type: 'checkbox', name: 'circulation', id: 'f-circulation', checked: true, 'data-draft': 'circulation' }),
        h('label', { for: 'f-circulation' }, '可院外购药（处方流转）')))),
  lines,
  h('div', { class: 'row' },
    h('button', { type: 'button', class: 'secondary', id: 'add-line', onclick: () => { addLine(); } }, '添加药品')),
  status, slot);
addLine();

function value(name: string): string {
  return ((form.elements.namedItem(name) as HTMLInputElement | null)?.value || '').trim();
}

function body(): any | null {
  const drugs = [];
  for (let n = 1; n <= lineCount; n += 1) {
    if (!value(`l${n}.med_code`)) continue;
    drugs.push({
      med_code: value(`l${n}.med_code`), quantity: Number(value(`l${n}.quantity`)) || 0, dose: Number(value(`l${n}.dose`)) || 0,
      frequency: value(`l${n}.frequency`), days: Number(value(`l${n}.days`)) || 0,
    });
  }
  if (!value('cert_no') || !value('name') || !value('visit_id') || !value('diag_code') || !drugs.length) return null;
  const now = new Date().toISOString();
  return {
    hosp_rxno: rxno, rx_type: value('rx_type'), prescribed_at: now, valid_days: Number(value('valid_days')) || 0,
    circulation: (form.elements.namedItem('circulation') as HTMLInputElement).checked,
    doctor: { code, name: doctor.name || code, dept_code: doctor.dept_code || 'DEPT', dept_name: doctor.dept_name || '门诊' },
    insured: { cert_type: '01', cert_no: value('cert_no').toUpperCase(), name: value('name') },
    visit: { visit_id: value('visit_id'), visit_time: now, biz_type: '01' },
    diagnoses: [{ code: value('diag_code'), name: value('diag_name') || value('diag_code'), main: true }],
    drugs,
  };
}

// where a problem belongs: rx's rule problems ({line, field}) and pydantic's ("drugs.0.quantity")
function fieldOf(d: any): string | null {
  const f = String(d.field || '');
  if (d.line) return `l${d.line}.${f.split('.').pop()}`;
  const m = /^drugs\.(\d+)\.(\w+)/.exec(f);
  if (m) return `l${Number(m[1]) + 1}.${m[2]}`;
  if (f.startsWith('insured.')) return f === 'insured.name' ? 'name' : 'cert_no';
  if (f.startsWith('visit.')) return 'visit_id';
  if (f.startsWith('diagnoses')) return 'diag_code';
  if (['valid_days', 'rx_type', 'circulation'].includes(f)) return f;
  return null;
}

async function precheck(): Promise<void> {
  if (current) return; // passed already; a change after that starts a new prescription (see onInput)
  const b = body();
  if (!b) { status.textContent = '填写完整后自动进行事前审核。'; return; }
  const mine = ++seq;
  status.textContent = '正在事前审核……';
  try {
    const answer = await api('POST', '/rx/precheck', b);
    if (mine !== seq) return;
    clearFieldErrors(form);
    slot.hidden = true;
    current = { ...answer, drugs: b.drugs };
    status.textContent = `事前审核通过，医保处方编号 ${answer.hi_rxno}。请核对后签名。`;
    form.dataset.state = 'passed';
    announce('事前审核通过');
    renderStep();
  } catch (e) {
    if (mine !== seq) return;
    clearFieldErrors(form);
    form.dataset.state = 'problems';
    if (e instanceof ApiError && e.code === 'RX_PRECHECK_FAILED') {
      const loose: string[] = [];
      for (const d of e.details as any[]) {
        const text = RULES[(d as any).code] || d.problem || '内容有误';
        const name = fieldOf(d);
        if (name && form.querySelector(`.field[data-field="${CSS.escape(name)}"]`)) setFieldError(form, name, text);
        else loose.push(text);
      }
      status.textContent = `事前审核发现 ${e.details.length} 个问题，请按提示修改。`;
      slot.hidden = !loose.length;
      slot.textContent = loose.join(' ');
    } else if (e instanceof ApiError && e.code === 'IDEMPOTENCY_KEY_REUSED') {
      rxno = newNumber();
      (document.getElementById('hosp-rxno') as HTMLElement).textContent = rxno;
      schedule();
    } else {
      status.textContent = '事前审核未完成。';
      showError(slot, e, form, fieldOf as any);
    }
  }
}

function schedule(): void {
  window.clearTimeout(timer);
  timer = window.setTimeout(() => { void precheck(); }, 600);
}

form.addEventListener('input', () => {
  if (current && current.status === 'precheck') {
    // the passed pre-check reserved a number for what was there; an edit is a new prescription
    current = null;
    rxno = newNumber();
    (document.getElementById('hosp-rxno') as HTMLElement).textContent = rxno;
    renderStep();
  }
  if (!current) schedule();
});
form.addEventListener('change', () => { if (!current) schedule(); });
form.addEventListener('submit', (e) => e.preventDefault());

function hexToBase64(hex: string): string {
  let s = '';
  for (let i = 0; i < hex.length; i += 2) s += String.fromCharCode(parseInt(hex.slice(i, i + 2), 16));
  return btoa(s);
}

function renderStep(): void {
  // once signed, the prescription is what was signed: the form is read-only until the next one
  const locked = !!current && current.status !== 'precheck';
  form.querySelectorAll<HTMLInputElement>('input,select,button').forEach((el) => { el.disabled = locked; });
  if (!current) {
    clear(step, h('h2', { id: 'step-h' }, '签名与上传'), h('p', { class: 'muted' }, '事前审核通过后，在这里签名并上传医保。'));
    return;
  }
  clear(step, h('h2', { id: 'step-h' }, '签名与上传'),
    h('div', { class: 'row spread' }, h('span', {}, `处方 ${current.rx_id}`), badge(current.status)));
  if (current.status === 'precheck') {
    const keyInput = h('input', { type: 'password', id: 'f-key', name: 'key', autocomplete: 'off', value: sessionStorage.getItem(KEY) || '' });
    const err = h('p', { class: 'error', hidden: true, id: 'sign-error' });
    const show = h('button', { type: 'button', id: 'show-signing', onclick: (e: Event) => void material(e.currentTarget as HTMLButtonElement, keyInput, err) }, '签名');
    step.append(
      h('p', {}, '签名前先查看要签署的内容：处方内容和处方笺 PDF 的 SM3 摘要。'),
      h('div', { class: 'field standin', 'data-field': 'key' },
        h('label', { for: 'f-key' }, '签名私钥（本地演示：模拟医生 USB Key）'), keyInput,
        h('p', { class: 'hint' }, '正式环境由医生的 USB Key 或 CA 签名服务签名，私钥不离开设备。')),
      show, err);
  } else if (current.status === 'signed') {
    const err = h('p', { class: 'error', hidden: true, id: 'upload-error' });
    step.append(current.signedView || '', h('button', { type: 'button', id: 'upload', onclick: (e: Event) => void upload(e.currentTarget as HTMLButtonElement, err) }, '上传'), err);
  } else {
    step.append(current.signedView || '', h('p', { id: 'uploaded', role: 'status' },
      `已上传医保处方中心（中心状态 ${current.center_status === '1' ? '有效' : current.center_status}）。患者可在“电子处方”中查看。`),
      h('button', { type: 'button', class: 'secondary', id: 'next-rx', onclick: () => { location.reload(); } }, '开下一张处方'));
  }
}

async function material(button: HTMLButtonElement, keyInput: HTMLInputElement, err: HTMLElement): Promise<void> {
  busy(button, true);
  err.hidden = true;
  try {
    const m = await api('GET', `/rx/prescriptions/${encodeURIComponent(current.rx_id)}/document`);
    const key = keyInput.value.trim();
    if (!/^[0-9a-fA-F]{1,64}$/.test(key)) {
      err.hidden = false; err.setAttribute('role', 'alert'); err.textContent = '请提供签名私钥（64 位十六进制）。';
      return;
    }
    sessionStorage.setItem(KEY, key);
    const publicKey = sm2.getPublicKeyFromPrivateKey(key.padStart(64, '0'));
    const der = sm2.doSignature(m.signing_input, key.padStart(64, '0'), { hash: true, der: true, publicKey });
    const signature = hexToBase64(der);
    const answer = await api('POST', `/rx/prescriptions/${encodeURIComponent(current.rx_id)}/signature`, { pdf_sm3: m.pdf_sm3, signature });
    const pdf = URL.createObjectURL(new Blob([Uint8Array.from(atob(m.pdf_base64), (c) => c.charCodeAt(0))], { type: 'application/pdf' }));
    current = {
      ...current, ...answer,
      signedView: h('div', { id: 'signed' },
        h('h3', {}, '签署内容'),
        h('pre', { class: 'signing-input', id: 'signing-input', tabindex: '0', 'aria-label': '签署内容原文' }, m.signing_input),
        h('table', {}, h('tbody', {},
          h('tr', {}, h('th', { scope: 'row' }, '处方内容 SM3'), h('td', { class: 'mono' }, m.content_sm3)),
          h('tr', {}, h('th', { scope: 'row' }, '处方笺 PDF SM3'), h('td', { class: 'mono' }, m.pdf_sm3)),
          h('tr', {}, h('th', { scope: 'row' }, '签名（SM2，DER，base64）'), h('td', { class: 'mono', id: 'signature' }, signature)),
          h('tr', {}, h('th', { scope: 'row' }, '签名公钥'), h('td', { class: 'mono' }, publicKey)),
          h('tr', {}, h('th', { scope: 'row' }, '验签结果'), h('td', { id: 'verify-result' }, '医保处方服务验签通过，处方已签名')))),
        h('p', {}, h('a', { href: pdf, download: `${current.rx_id}.pdf` }, '下载处方笺 PDF'))),
    };
    announce('签名成功，验签通过');
    renderStep();
    void loadRecent();
  } catch (e) {
    showError(err, e);
  } finally { busy(button, false); }
}

async function upload(button: HTMLButtonElement, err: HTMLElement): Promise<void> {
  busy(button, true);
  try {
    const answer = await api('POST', '/rx/prescriptions', { trace_code: current.trace_code, hi_rxno: current.hi_rxno });
    current = { ...current, ...answer };
    announce('已上传医保');
    renderStep();
    void loadRecent();
  } catch (e) { showError(err, e); } finally { busy(button, false); }
}

async function revoke(rx: any, reasonInput: HTMLInputElement, err: HTMLElement, button: HTMLButtonElement): Promise<void> {
  const reason = reasonInput.value.trim();
  if (reason.length < 2) {
    err.hidden = false; err.setAttribute('role', 'alert'); err.textContent = '请填写撤销原因（至少 2 个字）。';
    reasonInput.setAttribute('aria-invalid', 'true');
    return;
  }
  busy(button, true);
  try {
    await api('POST', `/rx/prescriptions/${encodeURIComponent(rx.rx_id)}/revoke`, { reason });
    announce('处方已撤销');
    await loadRecent();
  } catch (e) { showError(err, e); } finally { busy(button, false); }
}

async function loadRecent(): Promise<void> {
  try {
    const items = (await api('GET', '/rx/prescriptions?limit=10')).items || [];
    clear(recent, items.length ? items.map((rx: any) => {
      const li = h('li', { class: 'card', 'data-rx': rx.rx_id, 'data-status': rx.status },
        h('div', { class: 'row spread' }, h('h3', {}, (rx.drugs || []).map((d: any) => d.drug_name).join('、')), badge(rx.status)),
        summary(rx), drugTable(rx));
      const unused = rx.doctor_code === code && rx.uses === 0 && ['precheck', 'signed', 'valid', 'released'].includes(rx.status);
      if (unused) {
        const reason = h('input', { name: `reason-${rx.rx_id}`, id: `reason-${rx.rx_id}`, 'data-draft': `reason-${rx.rx_id}` });
        const err = h('p', { class: 'error', hidden: true });
        const button = h('button', { type: 'button', class: 'danger', onclick: () => void revoke(rx, reason, err, button) }, '撤销处方');
        li.append(h('div', { class: 'row' }, h('label', { for: reason.id }, '撤销原因'), h('div', { class: 'grow' }, reason), button), err);
      }
      return li;
    }) : h('li', { class: 'muted' }, '暂无处方。'));
  } catch (e) { showError(slot, e); }
}

renderStep();
void loadRecent().then(() => { document.body.dataset.ready = '1'; });
