// 患者首页 (the internet hospital's home page module): 待办 cards across visits, then the visit dashboard
// (就诊动态看板) of the chosen visit: a step timeline, queue position, the next place, the next to-do and
// the buttons into check-in, pre-consultation, payment and e-invoice. Polls every few seconds (and when
// the tab comes back), so a new hospital event shows without a reload; changes are announced politely.
import { api, ApiError } from './shared/api';
import { announce, clear, frame, h, PATIENT_NAV, showError, when } from './shared/ui';

const POLL_MS = Number(new URLSearchParams(location.search).get('poll_ms')) || 4000;
const ACTIONS: Record<string, string> = {
  check_in: '签到', preconsult: '预问诊', pay: '去缴费', invoice: '电子发票', report: '查看报告',
  medicine: '取药', survey: '去评价', exam: '检查须知', wait: '候诊', none: '',
};

const { main } = frame('首页', { nav: PATIENT_NAV });
const todos = h('section', { 'aria-labelledby': 'todo-h' }, h('h2', { id: 'todo-h' }, '待办'), h('p', { class: 'muted' }, '正在加载…'));
const board = h('section', { 'aria-labelledby': 'board-h' }, h('h2', { id: 'board-h' }, '就诊动态'));
const errorSlot = h('p', { class: 'error', hidden: true });
const updated = h('p', { class: 'muted small', id: 'updated' });
main.append(errorSlot, todos, board, updated);

let chosen: string | null = null;
let lastSeen = '';

function actionLink(link: string | null | undefined, action: string, label?: string): HTMLElement | null {
  if (!link) return null;
  const text = label || ACTIONS[action] || '查看';
  // the hospital's own mobile pages (/m/...): same origin in production, not part of bianjie
  return h('a', { class: 'button', href: link }, text);
}

function deadline(iso: string | null | undefined): HTMLElement | null {
  return iso ? h('span', { class: 'badge warn' }, `截止 ${when(iso)}`) : null;
}

function todoCard(card: any): HTMLElement {
  return h('li', { class: 'card todo', 'data-action': card.action },
    h('div', { class: 'row spread' }, h('h3', {}, card.title), deadline(card.deadline)),
    card.detail ? h('p', { class: 'muted' }, card.detail) : null,
    card.place_name ? h('p', {}, '地点：', h('span', { class: 'place', 'data-poi': card.place_poi || '' }, card.place_name)) : null,
    actionLink(card.action_link, card.action));
}

function renderTodos(cards: any[]): void {
  clear(todos, h('h2', { id: 'todo-h' }, `待办（${cards.length}）`),
    cards.length ? h('ul', { class: 'cards', id: 'todo-cards' }, cards.map(todoCard)) : h('p', { class: 'muted' }, '暂无待办事项。'));
}

function renderBoard(visits: any[], b: any | null): void {
  const picker = visits.length > 1
    ? h('div', { class: 'row', role: 'group', 'aria-label': '选择就诊' }, visits.map((v) =>
      h('button', { type: 'button', class: v.visit_id === chosen ? '' : 'secondary', 'aria-pressed': String(v.visit_id === chosen),
        onclick: () => { chosen = v.visit_id; refresh(); } }, `${v.department || '门诊'} ${when(v.appointment_at)}`)))
    : null;
  if (!b) { clear(board, h('h2', { id: 'board-h' }, '就诊动态'), picker, h('p', { class: 'muted' }, '今天没有就诊安排。')); return; }
  const next = b.next_todo || {};
  const queue = b.queue_position === null || b.queue_position === undefined ? null
    : b.queue_position === 0 ? '已叫号，请进入诊室' : `前面还有 ${b.queue_position} 位`;
  clear(board,
    h('h2', { id: 'board-h' }, '就诊动态'),
    picker,
    h('div', { class: 'card', id: 'visit' },
      h('div', { class: 'row spread' }, h('h3', {}, `${b.department || '门诊'}${b.doctor ? ` · ${b.doctor}` : ''}`),
        h('span', { class: 'badge ok', id: 'state' }, `当前：${b.state_label || '未开始'}`)),
      b.appointment_at ? h('p', { class: 'muted small' }, `预约时间 ${when(b.appointment_at)}`) : null,
      queue ? h('p', { id: 'queue' }, `排队：${queue}`) : null),
    h('div', { class: 'card', id: 'next' },
      h('h3', {}, '下一步'),
      h('p', { id: 'next-title' }, next.title || '暂无'),
      next.detail ? h('p', { class: 'muted' }, next.detail) : null,
      next.place_name ? h('p', {}, '去往：', h('strong', { 'data-poi': next.place_poi || '' }, next.place_name),
        h('span', { class: 'muted small' }, '（院内导航上线后可一键导航）')) : null,
      deadline(next.deadline),
      actionLink(next.action_link, next.action)),
    h('div', { class: 'card' },
      h('h3', { id: 'steps-h' }, '就诊进度'),
      h('ol', { class: 'timeline', 'aria-labelledby': 'steps-h' }, b.history.map((step: any, i: number) => {
        const current = i === b.history.length - 1;
        return h('li', { class: current ? 'current' : '', 'aria-current': current ? 'step' : null },
          `${step.label} ${when(step.at)}${step.place_name ? ` · ${step.place_name}` : ''}${current ? '（当前）' : ''}`);
      }))),
    h('div', { class: 'card' }, h('h3', {}, '常用服务'),
      h('div', { class: 'actions' },
        h('a', { class: 'button secondary', href: `/m/checkin` }, '签到'),
        h('a', { class: 'button secondary', href: `/m/preconsult` }, '预问诊'),
        h('a', { class: 'button secondary', href: `/m/pay` }, '缴费'),
        h('a', { class: 'button secondary', href: `/m/invoice` }, '电子发票'))),
    b.todos.length ? h('div', { class: 'card' }, h('h3', {}, '本次就诊待办'),
      h('ul', {}, b.todos.map((t: any) => h('li', {}, t.title, t.deadline ? `（截止 ${when(t.deadline)}）` : '')))) : null);
}

async function refresh(): Promise<void> {
  try {
    const dash = await api('GET', '/guide/dashboard');
    const visits = dash.visits || [];
    if (!chosen || !visits.some((v: any) => v.visit_id === chosen)) chosen = visits[0]?.visit_id || null;
    const b = chosen ? await api('GET', `/guide/visits/${encodeURIComponent(chosen)}`) : null;
    const signature = JSON.stringify([dash.cards, b?.state, b?.queue_position, b?.history?.length, b?.next_todo]);
    if (signature !== lastSeen) {
      renderTodos(dash.cards || []);
      renderBoard(visits, b);
      if (lastSeen) announce(`就诊动态已更新：${b?.state_label || ''}，${b?.next_todo?.title || ''}`);
      lastSeen = signature;
    }
    errorSlot.hidden = true;
    updated.textContent = `更新于 ${when(new Date().toISOString())}，每 ${Math.round(POLL_MS / 1000)} 秒自动刷新`;
    document.body.dataset.ready = '1';
  } catch (e) {
    if (e instanceof ApiError) showError(errorSlot, e);
    else throw e;
  }
}

void refresh();
window.setInterval(() => { if (document.visibilityState === 'visible') void refresh(); }, POLL_MS);
document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') void refresh(); });

