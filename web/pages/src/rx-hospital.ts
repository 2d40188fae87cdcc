// 医院处方流转岗 (staff desk, desktop): the hospital's valid prescriptions (GET /rx/prescriptions?status=valid);
// for each, confirm the in-hospital settlement (the patient paid at the cashier and takes the medicine at the
// hospital pharmacy: POST .../confirmation {mode: in_hospital, settlement, items}) or release it for purchase
// at an outside designated pharmacy ({mode: external}). The settlement is the demo till's (catalogue prices,
// insurance 70 %); a hospital's HIS fills in its own.
import { api } from './shared/api';
import { badge, demoSettlement, drugTable, summary } from './shared/rxdesk';
import { announce, busy, clear, frame, h, money, showError } from './shared/ui';

const { main } = frame('医院处方流转（院内结算 / 院外流转）', { wide: true });
const slot = h('p', { class: 'error', hidden: true });
const list = h('ul', { class: 'cards', id: 'valid' });
const done = h('ul', { class: 'cards', id: 'done' });
main.append(
  h('p', { class: 'muted' }, '患者选择在本院取药时，收费处结算后在此确认院内结算；选择院外购药时，在此将处方流转到院外定点药店。'),
  slot,
  h('div', { class: 'desk' },
    h('section', { 'aria-labelledby': 'valid-h' }, h('h2', { id: 'valid-h' }, '待确认的处方'), list),
    h('section', { 'aria-labelledby': 'done-h' }, h('h2', { id: 'done-h' }, '已处理'), done)));

async function confirm(rx: any, mode: 'in_hospital' | 'external', button: HTMLButtonElement, err: HTMLElement): Promise<void> {
  busy(button, true);
  try {
    const bodyOf = mode === 'external' ? { mode } : { mode, ...demoSettlement(rx, 'HS') };
    const answer = await api('POST', `/rx/prescriptions/${encodeURIComponent(rx.rx_id)}/confirmation`, bodyOf);
    announce(mode === 'external' ? '处方已流转到院外' : '院内结算已确认，处方已取药');
    handled.unshift({ ...rx, status: answer.status, mode });
    await load();
  } catch (e) { showError(err, e); busy(button, false); }
}

const handled: any[] = [];

function card(rx: any): HTMLElement {
  const err = h('p', { class: 'error', hidden: true });
  const bill = demoSettlement(rx, 'HS');
  const actions = h('div', { class: 'row' });
  const inHospital = h('button', { type: 'button', 'data-action': 'in_hospital', onclick: () => void confirm(rx, 'in_hospital', inHospital, err) },
    `确认院内结算（${money(bill.settlement.total_cents)}）`);
  actions.append(inHospital);
  if (rx.circulation) {
    const external = h('button', { type: 'button', class: 'secondary', 'data-action': 'external', onclick: () => void confirm(rx, 'external', external, err) }, '流转到院外药店');
    actions.append(external);
  } else {
    actions.append(h('span', { class: 'muted small' }, '该处方不可院外购药'));
  }
  return h('li', { class: 'card', 'data-rx': rx.rx_id, 'data-status': rx.status },
    h('div', { class: 'row spread' }, h('h3', {}, (rx.drugs || []).map((d: any) => d.drug_name).join('、')), badge(rx.status)),
    summary(rx), drugTable(rx),
    h('p', { class: 'small' }, `院内结算：合计 ${money(bill.settlement.total_cents)}，医保统筹 ${money(bill.settlement.fund_pay_cents)}，个人现金 ${money(bill.settlement.cash_pay_cents)}`),
    actions, err);
}

async function load(): Promise<void> {
  try {
    const items = (await api('GET', '/rx/prescriptions?status=valid&limit=50')).items || [];
    clear(list, items.length ? items.map(card) : h('li', { class: 'muted' }, '暂无待确认的处方。'));
    clear(done, handled.length ? handled.map((rx) => h('li', { class: 'card', 'data-rx': rx.rx_id, 'data-status': rx.status },
      h('div', { class: 'row spread' }, h('h3', {}, (rx.drugs || []).map((d: any) => d.drug_name).join('、')), badge(rx.status)),
      h('p', { class: 'small' }, rx.mode === 'external' ? '已流转：患者可凭医保电子凭证到院外定点药店购药。' : '已院内结算：患者到本院药房取药。')))
      : h('li', { class: 'muted' }, '本次还没有处理过处方。'));
    slot.hidden = true;
    document.body.dataset.ready = '1';
  } catch (e) { showError(slot, e); }
}

void load();
window.setInterval(() => { if (document.visibilityState === 'visible') void load(); }, 10000);
