// 会诊记录: 我发起的 and 我参与的, each with tabs for the four states (and drafts, cancelled) with counts,
// a date filter, newest first, 20 at a time ("加载更多").
import { clear, frame, h, showError } from '../../pages/src/shared/ui';
import { badge, beijing, call, keepQuery, NAV, param, STATES } from './common';

const { main } = frame('会诊记录', { wide: true, nav: NAV });
keepQuery();
const slot = h('p', { class: 'error', hidden: true });
const boxes = h('div', { class: 'row', role: 'tablist', 'aria-label': '记录类型' });
const tabs = h('div', { class: 'row', role: 'tablist', 'aria-label': '会诊状态' });
const from = h('input', { type: 'date', name: 'from_date', id: 'from' }) as HTMLInputElement;
const to = h('input', { type: 'date', name: 'to_date', id: 'to' }) as HTMLInputElement;
const list = h('ul', { class: 'cards', id: 'records' });
const more = h('button', { type: 'button', class: 'secondary', hidden: true }, '加载更多') as HTMLButtonElement;
main.append(slot, boxes, tabs,
  h('div', { class: 'row' }, h('label', { for: 'from' }, '开始日期'), from, h('label', { for: 'to' }, '结束日期'), to),
  list, more);

let box = param('box') === 'joined' ? 'joined' : 'mine';
let status = param('status') || 'scheduled';
let cursor: string | null = null;

function tab(label: string, selected: boolean, onclick: () => void, data: Record<string, string>): HTMLElement {
  return h('button', { type: 'button', role: 'tab', class: selected ? '' : 'secondary', 'aria-selected': String(selected), onclick, ...data }, label);
}

async function load(append = false): Promise<void> {
  slot.hidden = true;
  const q = new URLSearchParams({ box, status, limit: '20' });
  if (from.value) q.set('from_date', from.value);
  if (to.value) q.set('to_date', to.value);
  if (append && cursor) q.set('cursor', cursor);
  try {
    const page = await call('GET', `/consult/consultations?${q}`);
    clear(boxes,
      tab('我发起的', box === 'mine', () => { box = 'mine'; void load(); }, { 'data-box': 'mine' }),
      tab('我参与的', box === 'joined', () => { box = 'joined'; void load(); }, { 'data-box': 'joined' }));
    clear(tabs, STATES.map(([s, zh]) => tab(`${zh} ${page.counts[s] ?? 0}`, s === status, () => { status = s; void load(); }, { 'data-state': s })));
    const rows = page.items.map((r: any) => h('li', { class: 'card', 'data-consultation': r.consultation_id },
      h('div', { class: 'row spread' },
        h('a', { href: `/pages/consult-detail?id=${encodeURIComponent(r.consultation_id)}` }, r.purpose),
        badge(r.status)),
      h('p', { class: 'muted small' }, `患者 ${r.patient_masked} · ${beijing(r.start)} · 申请人 ${r.applicant} · 受邀医生 ${r.participants} 位`)));
    if (append) list.append(...rows);
    else clear(list, rows.length ? rows : h('li', { class: 'muted' }, '该状态下暂无会诊记录。'));
    cursor = page.cursor;
    more.hidden = !cursor;
  } catch (e) {
    showError(slot, e);
  }
  document.body.dataset.ready = '1';
}

from.addEventListener('change', () => void load());
to.addEventListener('change', () => void load());
more.addEventListener('click', () => void load(true));
void load();
