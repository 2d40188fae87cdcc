// 信用就医无感支付 for the patient: sign an agreement per channel (through the channel's own signing
// page: here the local stand-in's, /pages/pay-sign), see the agreements in the order charges try them
// (用户签约排序), reorder by the arrow buttons or by dragging, and terminate (解约) after a confirmation.
import { api } from './shared/api';
import { CHANNELS, channelName } from './shared/channels';
import { announce, busy, clear, frame, h, PATIENT_NAV, showError, when } from './shared/ui';

const { main } = frame('信用就医无感支付', { nav: PATIENT_NAV });
const slot = h('p', { class: 'error', hidden: true });
const list = h('ol', { class: 'cards order', id: 'agreements', 'aria-describedby': 'order-hint' });
const ended = h('ul', { class: 'cards', id: 'ended' });
const signBox = h('div', { class: 'card', id: 'sign' });
const confirm = h('dialog', { id: 'confirm', 'aria-labelledby': 'confirm-h', role: 'alertdialog' });
const bills = h('ul', { class: 'cards', id: 'bills' });
let active: any[] = [];

const notice = sessionStorage.getItem('bianjie.pay.notice');
if (notice) sessionStorage.removeItem('bianjie.pay.notice');
main.append(
  notice ? h('p', { class: 'notice', role: 'status', id: 'notice' }, notice) : null,
  h('p', { class: 'muted' }, '签约后，医院结算时按下面的顺序依次尝试扣费，无需在窗口排队缴费。'),
  slot,
  h('h2', {}, '我的签约（扣费顺序）'),
  h('p', { class: 'hint', id: 'order-hint' }, '用“上移”“下移”按钮或拖动卡片调整扣费顺序，排在第一位的最先扣费。'),
  list,
  h('h2', {}, '新增签约'), signBox,
  h('h2', {}, '已解约'), ended,
  h('h2', {}, '扣费与退款'),
  h('h3', {}, '待缴费的账单'),
  bills,
  h('p', { class: 'muted', id: 'charges-note' }, '医院结算时按上面的签约顺序扣费。扣费成功后会通过微信或短信通知您，账单从待办中消失。'),
  h('h3', {}, '扣费和退款的状态'),
  h('dl', { class: 'states', id: 'charge-states' },
    h('dt', {}, h('span', { class: 'badge warn' }, '处理中')),
    h('dd', {}, '已向支付渠道发起扣费（或退款），渠道还没有给出结果。请不要重复缴费：系统每分钟向渠道查询一次，确认后自动更新；如果第一个签约扣费失败，会按顺序尝试下一个签约。'),
    h('dt', {}, h('span', { class: 'badge ok' }, '已扣费')),
    h('dd', {}, '费用已从排在前面的某个签约账户扣除，无需再到窗口缴费。'),
    h('dt', {}, h('span', { class: 'badge err' }, '扣费失败')),
    h('dd', {}, '所有签约都没有扣费成功（如余额不足）。账单仍是“待缴费”，可在线缴费或到收费窗口缴费。'),
    h('dt', {}, h('span', { class: 'badge warn' }, '退款中')),
    h('dd', {}, '医院已申请退款（如取消检查），退款原路退回扣费的账户，到账时间以银行或渠道为准。'),
    h('dt', {}, h('span', { class: 'badge ok' }, '已退款')),
    h('dd', {}, '退款已到账，可部分退款，多次退款合计不超过扣费金额。')),
  h('p', { class: 'hint' }, '逐笔的扣费与退款明细请以支付渠道（如银行 App）的账单为准，或到收费处查询。'),
  confirm);

function render(agreements: any[]): void {
  active = agreements.filter((a) => a.status === 'ACTIVE');
  const gone = agreements.filter((a) => a.status !== 'ACTIVE');
  clear(list, active.length ? active.map((a, i) => h('li', {
    class: 'card', draggable: 'true', 'data-id': a.agreement_id, 'data-channel': a.channel,
  },
    h('span', { class: 'badge ok', 'aria-hidden': 'true' }, String(i + 1)),
    h('div', { class: 'grow' }, h('h3', {}, `第${i + 1}位：${channelName(a.channel)}`),
      h('p', { class: 'muted small' }, `账号 ${a.account} · 签约于 ${when(a.signed_at)}`)),
    h('button', { type: 'button', class: 'secondary', 'aria-label': `上移 ${channelName(a.channel)}`, disabled: i === 0, onclick: () => move(i, -1) }, '上移'),
    h('button', { type: 'button', class: 'secondary', 'aria-label': `下移 ${channelName(a.channel)}`, disabled: i === active.length - 1, onclick: () => move(i, 1) }, '下移'),
    h('button', { type: 'button', class: 'danger', 'aria-label': `解约 ${channelName(a.channel)}`, onclick: () => askTerminate(a) }, '解约'),
  )) : h('li', { class: 'muted' }, '还没有签约。'));
  clear(ended, gone.length ? gone.map((a) => h('li', { class: 'card' }, `${channelName(a.channel)} ${a.account}`,
    h('span', { class: 'badge' }, a.terminated_by === 'channel' ? ' 银行已解约' : ' 已解约'), ` ${when(a.terminated_at)}`)) : h('li', { class: 'muted' }, '无'));
  const signed = new Set(active.map((a) => a.channel));
  clear(signBox, Object.entries(CHANNELS).map(([code, c]) => h('div', { class: 'row spread' },
    h('span', {}, c.name),
    signed.has(code) ? h('span', { class: 'badge ok' }, '已签约')
      : h('a', { class: 'button', href: `/pages/pay-sign?channel=${code}`, 'data-sign': code }, '去签约'))));
  wireDrag();
}

// the bills still to pay are guide's 待缴费 to-dos (from the hospital's payment events, and pay's failed
// charges); pay has no patient-side list of charges yet
async function loadBills(): Promise<void> {
  try {
    const cards = ((await api('GET', '/guide/dashboard')).cards || []).filter((c: any) => c.action === 'pay');
    clear(bills, cards.length ? cards.map((c: any) => h('li', { class: 'card', 'data-card': c.card_id },
      h('div', { class: 'row spread' }, h('span', {}, c.title), h('span', { class: 'badge warn' }, '待缴费')),
      c.deadline ? h('p', { class: 'small muted' }, `截止 ${when(c.deadline)}${c.place_name ? ` · ${c.place_name}` : ''}`) : null))
      : h('li', { class: 'muted' }, '目前没有待缴费的账单。'));
  } catch {
    clear(bills, h('li', { class: 'muted' }, '暂时无法读取待缴费的账单。'));
  }
}

async function load(): Promise<void> {
  try { render((await api('GET', '/pay/agreements')).agreements); document.body.dataset.ready = '1'; } catch (e) { showError(slot, e); }
}

async function saveOrder(ids: string[]): Promise<void> {
  slot.hidden = true;
  try {
    render((await api('PUT', '/pay/agreements/order', { agreement_ids: ids })).agreements);
    announce(`扣费顺序已保存：${active.map((a, i) => `第${i + 1}位 ${channelName(a.channel)}`).join('，')}`);
  } catch (e) { showError(slot, e); await load(); }
}

function move(i: number, by: number): void {
  const ids = active.map((a) => a.agreement_id);
  const [id] = ids.splice(i, 1);
  ids.splice(i + by, 0, id);
  void saveOrder(ids).then(() => {
    const again = list.querySelector<HTMLButtonElement>(`li[data-id="${id}"] button[aria-label^="${by < 0 ? '上移' : '下移'}"]:not([disabled])`)
      || list.querySelector<HTMLButtonElement>(`li[data-id="${id}"] button:not([disabled])`);
    again?.focus();
  });
}

function wireDrag(): void {
  let dragged: HTMLElement | null = null;
  list.querySelectorAll<HTMLElement>('li[draggable]').forEach((li) => {
    li.addEventListener('dragstart', (e) => { dragged = li; li.classList.add('dragging'); e.dataTransfer?.setData('text/plain', li.dataset.id || ''); });
    li.addEventListener('dragend', () => { li.classList.remove('dragging'); });
    li.addEventListener('dragover', (e) => { e.preventDefault(); });
    li.addEventListener('drop', (e) => {
      e.preventDefault();
      if (!dragged || dragged === li) return;
      const ids = active.map((a) => a.agreement_id).filter((x) => x !== dragged!.dataset.id);
      ids.splice(ids.indexOf(li.dataset.id as string) + (dragged.compareDocumentPosition(li) & Node.DOCUMENT_POSITION_FOLLOWING ? 1 : 0), 0, dragged.dataset.id as string);
      void saveOrder(ids);
    });
  });
}

function askTerminate(a: any): void {
  const ok = h('button', { type: 'button', class: 'danger', id: 'confirm-terminate' }, '确认解约');
  const err = h('p', { class: 'error', hidden: true });
  clear(confirm,
    h('h2', { id: 'confirm-h' }, `解约 ${channelName(a.channel)}？`),
    h('p', {}, `解约后，医院结算将不再从 ${a.account} 扣费；之后的扣费按剩余签约的顺序进行。`),
    err,
    h('div', { class: 'row spread' }, h('button', { type: 'button', class: 'secondary', onclick: () => confirm.close() }, '取消'), ok));
  ok.addEventListener('click', async () => {
    busy(ok, true);
    try {
      await api('POST', `/pay/agreements/${encodeURIComponent(a.agreement_id)}/terminate`);
      confirm.close();
      announce(`已解约 ${channelName(a.channel)}`);
      await load();
    } catch (e) { showError(err, e); } finally { busy(ok, false); }
  });
  confirm.showModal();
}

void load();
void loadBills();
