// The patient's chat with the service bot (云客服), phone-first and embeddable in the hospital's WeChat page:
// typing indicator, quick-reply chips, deep-link cards, handoff status and the agent's replies (polled).
// The session secret stays in sessionStorage (this tab only); a patient token, if the page got one, is sent.
import './chat.css';

type Link = { title: string; url: string };
type Answer = {
  session: string; seq: number; reply: string; kind: string; intent: string | null; faq: string | null;
  links: Link[]; suggestions: string[]; handoff: { status: 'bot' | 'waiting' | 'agent'; waiting: number | null };
};
type Message = { seq: number; role: string; text: string; links: Link[] };

const SESSION = 'bianjie.assistant.session';
const ERRORS: Record<string, string> = {
  VALIDATION_FAILED: '消息太长或格式不对（最多 500 字）。',
  MESSAGE_EMPTY: '请输入您的问题。',
  MESSAGE_BINARY: '消息含有无法识别的字符，请输入文字。',
  RATE_LIMITED: '发送太频繁，请稍后再试。',
  SESSION_NOT_FOUND: '会话已过期，已为您重新开始。',
  SESSION_FORBIDDEN: '这个会话需要登录后继续。',
};
const CHIPS = ['几点开门', '停车怎么收费', '查报告', '预约挂号', '转人工'];

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...kids: (Node | string)[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...kids);
  return node;
}

const app = document.getElementById('app') as HTMLElement;
const log = el('div', { id: 'log', role: 'log', 'aria-live': 'polite', 'aria-label': '对话记录' });
const typing = el('p', { class: 'typing', hidden: '' }, '客服正在输入…');
const chips = el('div', { class: 'chips', role: 'group', 'aria-label': '快捷问题' });
const status = el('p', { class: 'status', role: 'status', hidden: '' });
const error = el('p', { class: 'error', role: 'alert' });
const input = el('textarea', { id: 'ask', maxlength: '500', rows: '1', placeholder: '请输入您的问题' });
const label = el('label', { for: 'ask', class: 'visually-hidden' }, '您的问题');
const send = el('button', { type: 'submit' }, '发送');
const form = el('form', { class: 'send' }, label, input, send);
app.append(
  el('header', {}, el('h1', {}, '云客服'), el('p', {}, '挂号、缴费、报告、院内导航等问题可直接问我')),
  el('main', { id: 'main' }, log, typing, chips, error),
  status,
  form,
);

let session = sessionStorage.getItem(SESSION);
let lastSeq = 0;
let polling: number | undefined;

function token(): string | null {
  const params = new URLSearchParams(location.hash.slice(1));
  const t = params.get('token');
  if (t) { sessionStorage.setItem('bianjie.token', t); history.replaceState(null, '', location.pathname); }
  return sessionStorage.getItem('bianjie.token');
}

async function call(path: string, body: unknown): Promise<any> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json', Accept: 'application/json' };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  const response = await fetch(path, { method: 'POST', headers, body: JSON.stringify(body) });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw Object.assign(new Error('api'), { code: data?.error?.code || 'INTERNAL' });
  return data;
}

function card(link: Link): HTMLAnchorElement {
  return el('a', { class: 'card', href: link.url }, `${link.title} ›`);
}

function show(role: string, text: string, links: Link[] = [], extra = ''): void {
  const who = { patient: '我', bot: '智能客服', agent: '人工客服', system: '' }[role] ?? '';
  const bubble = el('div', { class: 'bubble' });
  if (who && role !== 'patient') bubble.append(el('span', { class: 'who' }, who));
  bubble.append(text);
  for (const link of links) bubble.append(card(link));
  log.append(el('div', { class: `msg ${role} ${extra}`.trim(), 'data-role': role }, bubble));
  window.scrollTo(0, document.body.scrollHeight);
}

function setChips(items: string[]): void {
  chips.replaceChildren(...items.map((text) => {
    const b = el('button', { type: 'button' }, text);
    b.addEventListener('click', () => { void ask(text); });
    return b;
  }));
}

function setStatus(handoff: Answer['handoff']): void {
  if (handoff.status === 'bot') { status.hidden = true; stopPolling(); return; }
  status.hidden = false;
  status.textContent = handoff.status === 'waiting'
    ? `已转人工，正在排队${handoff.waiting ? `（前面还有 ${handoff.waiting} 位）` : ''}，请稍候`
    : '人工客服接待中';
  startPolling();
}

function startPolling(): void {
  if (polling === undefined) polling = window.setInterval(() => { void poll(); }, 2000);
}
function stopPolling(): void {
  if (polling !== undefined) { window.clearInterval(polling); polling = undefined; }
}

async function poll(): Promise<void> {
  if (!session) return;
  try {
    const data = await call('/assistant/sessions/poll', { session, after: lastSeq });
    for (const m of data.messages as Message[]) {
      if (m.role === 'agent' || m.role === 'system') show(m.role, m.text, m.links);
      lastSeq = Math.max(lastSeq, m.seq);
    }
    setStatus(data.handoff);
  } catch { /* the next poll tries again */ }
}

async function ask(text: string): Promise<void> {
  error.textContent = '';
  const question = text.trim();
  if (!question) { error.textContent = ERRORS.MESSAGE_EMPTY; return; }
  show('patient', question);
  typing.hidden = false;
  send.disabled = true;
  try {
    let answer: Answer;
    try {
      answer = await call('/assistant/messages', session ? { session, text: question } : { text: question });
    } catch (e: any) {
      if (e.code !== 'SESSION_NOT_FOUND') throw e;
      session = null;
      answer = await call('/assistant/messages', { text: question });
    }
    session = answer.session;
    sessionStorage.setItem(SESSION, session);
    lastSeq = Math.max(lastSeq, answer.seq);
    if (answer.reply) show('bot', answer.reply, answer.links, answer.kind === 'emergency' ? 'emergency' : '');
    setChips(answer.suggestions.length ? answer.suggestions : (answer.handoff.status === 'bot' ? CHIPS : []));
    setStatus(answer.handoff);
  } catch (e: any) {
    error.textContent = ERRORS[e.code] || '网络不稳定，请稍后再试。';
  } finally {
    typing.hidden = true;
    send.disabled = false;
  }
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  const text = input.value;
  input.value = '';
  void ask(text);
});
input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
});

show('bot', '您好，我是医院的智能客服。可以问我门诊时间、停车、报告、缴费等问题，或点下方的快捷问题。');
setChips(CHIPS);
if (session) void poll();
document.body.dataset.ready = '1';
