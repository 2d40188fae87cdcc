// 药店审方与发药 (staff desk, desktop): a pharmacist at an outside designated pharmacy scans the patient's
// 医保电子凭证 QR code (the camera with the browser's BarcodeDetector where there is one, else the code typed
// or pasted), gets the circulation authorization (POST /rx/authorizations), sees the prescriptions it holds,
// reviews each (POST .../review: pass, or reject with a reason) and records the dispense (POST .../dispense,
// the demo till's settlement).
import { api } from './shared/api';
import { badge, demoSettlement, drugTable, summary } from './shared/rxdesk';
import { announce, busy, clear, field, frame, h, money, showError, when } from './shared/ui';

const { main } = frame('药店审方与发药（电子处方）', { wide: true });
const slot = h('p', { class: 'error', hidden: true, id: 'scan-error' });
const codeInput = h('textarea', { name: 'ec_token', id: 'f-ec_token', rows: 2, autocomplete: 'off', 'data-draft': 'ec_token' });
const read = h('button', { type: 'submit', id: 'authorize' }, '读取处方');
const camera = h('button', { type: 'button', class: 'secondary', id: 'camera' }, '用摄像头扫码');
const video = h('video', { id: 'scan-video', hidden: true, muted: true, playsinline: true, 'aria-label': '扫码画面' });
const form = h('form', { id: 'scan', novalidate: true },
  field('医保电子凭证码', codeInput, '扫描患者出示的二维码，或输入二维码下方的码值'),
  h('div', { class: 'row' }, read, camera), video, slot);
const held = h('section', { id: 'held', 'aria-labelledby': 'held-h' });
main.append(h('div', { class: 'desk' }, h('section', { class: 'card', 'aria-labelledby': 'scan-h' }, h('h2', { id: 'scan-h' }, '读取医保电子凭证'), form), held));
let auth: any = null;

const Detector = (window as any).BarcodeDetector;
if (!Detector || !navigator.mediaDevices?.getUserMedia) {
  camera.hidden = true;
  form.append(h('p', { class: 'hint', id: 'no-camera' }, '此设备不支持摄像头扫码，请用扫码枪或手工输入码值。'));
}
camera.addEventListener('click', () => void scan());

async function scan(): Promise<void> {
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' } });
    video.srcObject = stream;
    video.hidden = false;
    await video.play();
    const detector = new Detector({ formats: ['qr_code'] });
    const stop = (): void => { stream.getTracks().forEach((t) => t.stop()); video.hidden = true; };
    const started = Date.now();
    const tick = async (): Promise<void> => {
      const found = await detector.detect(video).catch(() => []);
      if (found.length) { stop(); codeInput.value = found[0].rawValue; void authorize(); return; }
      if (Date.now() - started > 30000) { stop(); slot.hidden = false; slot.textContent = '没有扫到二维码，请手工输入码值。'; return; }
      window.setTimeout(() => void tick(), 250);
    };
    void tick();
  } catch {
    slot.hidden = false;
    slot.textContent = '无法打开摄像头，请用扫码枪或手工输入码值。';
  }
}

form.addEventListener('submit', (e) => { e.preventDefault(); void authorize(); });

async function authorize(): Promise<void> {
  const value = codeInput.value.trim();
  codeInput.removeAttribute('aria-invalid');
  if (value.length < 10) {
    codeInput.setAttribute('aria-invalid', 'true');
    slot.hidden = false; slot.setAttribute('role', 'alert'); slot.textContent = '请扫描或输入完整的医保电子凭证码。';
    return;
  }
  busy(read, true);
  try {
    auth = await api('POST', '/rx/authorizations', { ec_token: value });
    slot.hidden = true;
    codeInput.value = '';
    announce(`已读取 ${auth.prescriptions.length} 张处方`);
    render();
  } catch (e) {
    codeInput.setAttribute('aria-invalid', 'true');
    showError(slot, e);
  } finally { busy(read, false); }
}

async function reload(): Promise<void> {
  auth = await api('GET', `/rx/authorizations/${encodeURIComponent(auth.authorization_id)}`);
  render();
}

async function review(rx: any, result: 'pass' | 'reject', reasonInput: HTMLTextAreaElement, err: HTMLElement, button: HTMLButtonElement): Promise<void> {
  const reason = reasonInput.value.trim();
  if (result === 'reject' && !reason) {
    reasonInput.setAttribute('aria-invalid', 'true');
    err.hidden = false; err.setAttribute('role', 'alert'); err.textContent = '驳回时请填写原因。';
    return;
  }
  busy(button, true);
  try {
    await api('POST', `/rx/prescriptions/${encodeURIComponent(rx.rx_id)}/review`, { authorization_id: auth.authorization_id, result, reason });
    announce(result === 'pass' ? '审方通过' : '审方未通过，已驳回');
    await reload();
  } catch (e) { showError(err, e); busy(button, false); }
}

async function dispense(rx: any, err: HTMLElement, button: HTMLButtonElement): Promise<void> {
  busy(button, true);
  try {
    await api('POST', `/rx/prescriptions/${encodeURIComponent(rx.rx_id)}/dispense`, { authorization_id: auth.authorization_id, ...demoSettlement(rx, 'PS') });
    announce('发药已记录');
    await reload();
  } catch (e) { showError(err, e); busy(button, false); }
}

function card(rx: any): HTMLElement {
  const err = h('p', { class: 'error', hidden: true });
  const li = h('li', { class: 'card', 'data-rx': rx.rx_id, 'data-status': rx.status },
    h('div', { class: 'row spread' }, h('h3', {}, (rx.drugs || []).map((d: any) => d.drug_name).join('、')), badge(rx.status)),
    summary(rx), drugTable(rx));
  if (rx.status === 'authorized') {
    const reason = h('textarea', { name: `reason-${rx.rx_id}`, id: `reason-${rx.rx_id}`, rows: 2, 'data-draft': `reason-${rx.rx_id}` });
    const pass = h('button', { type: 'button', 'data-action': 'pass', onclick: () => void review(rx, 'pass', reason, err, pass) }, '审方通过');
    const reject = h('button', { type: 'button', class: 'danger', 'data-action': 'reject', onclick: () => void review(rx, 'reject', reason, err, reject) }, '驳回');
    li.append(field('驳回原因（驳回时必填）', reason), h('div', { class: 'row' }, pass, reject));
  } else if (rx.status === 'reviewed') {
    const bill = demoSettlement(rx, 'PS');
    const give = h('button', { type: 'button', 'data-action': 'dispense', onclick: () => void dispense(rx, err, give) }, `确认发药并结算（${money(bill.settlement.total_cents)}）`);
    li.append(h('p', { class: 'small' }, `合计 ${money(bill.settlement.total_cents)}，医保统筹 ${money(bill.settlement.fund_pay_cents)}，个人现金 ${money(bill.settlement.cash_pay_cents)}`), give);
  } else if (rx.status === 'dispensed') {
    li.append(h('p', { role: 'status', class: 'small' }, '已发药，结算结果已上报医保。'));
  } else if (rx.status === 'review_rejected') {
    li.append(h('p', { class: 'small' }, '审方未通过：请患者联系开方医生撤销后重开。'));
  }
  li.append(err);
  return li;
}

function render(): void {
  if (!auth) { clear(held); return; }
  clear(held, h('h2', { id: 'held-h' }, '本次读取的处方'),
    h('p', { class: 'muted small' }, `授权 ${auth.authorization_id}，本药店保留至 ${when(auth.expires_at)}`),
    h('ul', { class: 'cards', id: 'held-list' }, auth.prescriptions.map(card)));
}

document.body.dataset.ready = '1';
