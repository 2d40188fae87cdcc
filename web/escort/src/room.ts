// 陪诊室: the visit's progress as the patient allowed, refreshed every few seconds; every refresh re-checks
// the grant, so a revocation or the end of the visit shows here at the next refresh.
import { announce, clear, frame, h, when } from '../../pages/src/shared/ui';
import { call, EscortError, relationLabel, session } from './call';

const { main } = frame('陪诊室', { needsToken: false });
const head = h('section', { class: 'card', id: 'head' });
const now = h('section', { class: 'card', id: 'now', 'aria-labelledby': 'now-h' });
const shared = h('section', { id: 'shared' });
const notices = h('ol', { class: 'timeline', id: 'notices' });
const ended = h('p', { class: 'error', id: 'ended', hidden: true });
main.append(ended, head, now, shared, h('h2', {}, '就诊动态'), notices);

let last = '';
let timer = 0;

function items(title: string, rows: any[] | null): HTMLElement | null {
  if (rows === null) return null;
  return h('section', { class: 'card' }, h('h3', {}, title),
    rows.length ? h('ul', {}, rows.map((r) => h('li', {}, `${r.label || '—'}${r.place ? ` · ${r.place}` : ''}${r.ready_at ? ` · ${when(r.ready_at)}` : ''}`)))
      : h('p', { class: 'muted small' }, '暂无'));
}

function render(r: any): void {
  clear(head, h('p', {}, `您正在陪同您的亲友（${relationLabel(r.relation)}）就诊`), h('p', { class: 'small muted' }, `${r.department || ''}`));
  const queue = r.state === 'waiting' && r.queue_position !== null && r.queue_position !== undefined
    ? h('p', { id: 'queue' }, r.queue_position ? `前面还有 ${r.queue_position} 人` : '已叫号，请前往就诊') : null;
  const place = r.next?.place ? h('p', { id: 'next-place' }, `地点：${r.next.place}`) : null;
  const nav = r.next?.nav_link ? h('a', { class: 'button secondary', href: r.next.nav_link, rel: 'noreferrer' }, '院内导航') : null;
  clear(now,
    h('h2', { id: 'now-h' }, '当前环节'),
    h('p', { class: 'countdown', id: 'state' }, r.state_label || '等待就诊信息'),
    queue,
    r.next?.title ? h('p', { id: 'next-title' }, `下一步：${r.next.title}`) : null,
    place, nav,
    r.video_allowed ? h('p', { class: 'notice' }, '患者允许您加入互联网医院视频问诊，医生发起视频时可加入。') : null);
  clear(shared, items('检查检验报告', r.reports), items('处方', r.prescriptions));
  clear(notices, (r.notices || []).map((n: any, i: number) => h('li', { class: i === 0 ? 'current' : '' }, h('span', { class: 'small muted' }, when(n.at)), ' ', n.text)));
  const key = `${r.state}|${r.queue_position}|${(r.notices || [])[0]?.text || ''}`;
  if (last && key !== last) announce(`就诊进度更新：${r.state_label || ''}`);
  last = key;
}

function stop(e: EscortError): void {
  window.clearInterval(timer);
  session.clear();
  ended.hidden = false;
  ended.setAttribute('role', 'alert');
  ended.dataset.code = e.code;
  ended.textContent = `${e.message}（${e.code}）`;
  now.hidden = true; shared.hidden = true;
}

async function load(): Promise<void> {
  try {
    render(await call('GET', '/escort/room'));
  } catch (err) {
    if (err instanceof EscortError && [401, 403, 410].includes(err.status)) stop(err);
  }
}

(async () => {
  if (!session.get()) stop(new EscortError(401, 'SESSION_INVALID', '陪诊会话已失效，请重新打开邀请链接加入'));
  else { await load(); timer = window.setInterval(() => { void load(); }, 3000); }
  document.body.dataset.ready = '1';
})();
