// The agent desk (人工客服工作台): the queue of handed-off conversations, take one, read the transcript with
// the bot's guesses and suggested answers from the knowledge base, reply, close. For staff at desks.
import './chat.css';

type Msg = { seq: number; role: string; text: string };
type Transcript = {
  conversation: string; status: string; reason: string | null; agent: string | null; messages: Msg[];
  guesses: { entry: string; confidence: number }[];
  suggestions: { entry: string; question: string; answer: string; confidence: number }[];
};
const ERRORS: Record<string, string> = {
  CONVERSATION_NOT_WAITING: '这个会话已被其他客服接入或已结束。',
  CONVERSATION_NOT_TAKEN: '请先接入这个会话。',
  CONVERSATION_NOT_FOUND: '没有这个会话。',
  TOKEN_MISSING: '请先登录。', TOKEN_EXPIRED: '登录已过期，请重新登录。', ROLE_REQUIRED: '您没有人工客服权限。',
};
const ROLE = { patient: '患者', bot: '智能客服', agent: '人工客服', system: '系统' } as Record<string, string>;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...kids: (Node | string)[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...kids);
  return node;
}

const params = new URLSearchParams(location.hash.slice(1));
if (params.get('token')) { sessionStorage.setItem('bianjie.token', params.get('token') as string); history.replaceState(null, '', location.pathname); }

async function api(method: string, path: string, body?: unknown): Promise<any> {
  const headers: Record<string, string> = { Accept: 'application/json', Authorization: `Bearer ${sessionStorage.getItem('bianjie.token') || ''}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw Object.assign(new Error('api'), { code: data?.error?.code || 'INTERNAL' });
  return data;
}

document.documentElement.classList.add('desk');
const app = document.getElementById('app') as HTMLElement;
const queue = el('ul', { id: 'queue' });
const refresh = el('button', { type: 'button' }, '刷新');
const error = el('p', { class: 'error', role: 'alert' });
const detail = el('section', { id: 'detail', 'aria-label': '会话详情' }, el('p', {}, '从左侧选择一个会话接入。'));
app.append(
  el('header', {}, el('h1', {}, '人工客服工作台'), el('p', {}, '转人工的会话按排队顺序显示')),
  el('main', { id: 'main' }, el('section', { 'aria-label': '排队' }, el('h2', {}, '排队中的会话'), refresh, error, queue), detail),
);

let current: string | null = null;

async function loadQueue(): Promise<void> {
  error.textContent = '';
  try {
    const data = await api('GET', '/assistant/desk/queue');
    queue.replaceChildren(...data.items.map((item: any) => {
      const b = el('button', { type: 'button', 'data-conversation': item.conversation },
        `${item.status === 'waiting' ? '排队中' : '接待中'} · ${item.reason === 'explicit' ? '患者要求转人工' : '机器人没把握'} · ${item.queued_at.slice(11, 19)}`);
      b.addEventListener('click', () => { void open(item.conversation, item.status === 'waiting'); });
      return el('li', {}, b);
    }));
    if (!data.items.length) queue.append(el('li', {}, '暂无排队的会话'));
  } catch (e: any) { error.textContent = ERRORS[e.code] || '加载失败，请稍后再试。'; }
}

function render(t: Transcript): void {
  current = t.conversation;
  const lines = el('div', { role: 'log', 'aria-label': '对话记录' }, ...t.messages.map((m) =>
    el('div', { class: `msg ${m.role}` }, el('div', { class: 'bubble' }, el('span', { class: 'who' }, ROLE[m.role] || m.role), m.text))));
  const reply = el('textarea', { id: 'reply', maxlength: '1000' });
  const send = el('button', { type: 'button', id: 'send' }, '发送回复');
  const close = el('button', { type: 'button', id: 'close' }, '结束会话');
  const suggest = el('div', { class: 'suggest' }, el('h2', {}, '知识库建议（点击填入）'),
    ...t.suggestions.map((s) => {
      const b = el('button', { type: 'button' }, `${s.question}：${s.answer}`);
      b.addEventListener('click', () => { reply.value = s.answer; reply.focus(); });
      return b;
    }));
  const guesses = el('p', {}, `机器人的猜测：${t.guesses.map((g) => `${g.entry}（${Math.round(g.confidence * 100)}%）`).join('、') || '无'}`);
  send.addEventListener('click', async () => {
    try { render(await api('POST', `/assistant/desk/conversations/${t.conversation}/reply`, { text: reply.value })); }
    catch (e: any) { error.textContent = ERRORS[e.code] || '发送失败，请重试。'; }
  });
  close.addEventListener('click', async () => {
    try { await api('POST', `/assistant/desk/conversations/${t.conversation}/close`); detail.replaceChildren(el('p', {}, '会话已结束。')); await loadQueue(); }
    catch (e: any) { error.textContent = ERRORS[e.code] || '操作失败，请重试。'; }
  });
  detail.replaceChildren(el('h2', {}, `会话 ${t.conversation.slice(0, 8)} · ${t.status === 'agent' ? '接待中' : '排队中'}`), guesses, lines,
    suggest, el('label', { for: 'reply' }, '回复患者'), reply, el('div', { class: 'actions' }, send, close));
}

async function open(conversation: string, take: boolean): Promise<void> {
  error.textContent = '';
  try {
    render(await api(take ? 'POST' : 'GET', `/assistant/desk/conversations/${conversation}${take ? '/take' : ''}`));
    await loadQueue();
  } catch (e: any) { error.textContent = ERRORS[e.code] || '打开失败，请重试。'; }
}

refresh.addEventListener('click', () => { void loadQueue(); });
void loadQueue().then(() => { document.body.dataset.ready = '1'; });
void current;
