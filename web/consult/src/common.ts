// What the consult pages share: the API client that shows the service's own Chinese message (consult
// answers every refusal with a message a doctor can act on), the states' names, the doctors' nav.
import { ApiError } from '../../pages/src/shared/api';
import { toLogin, token } from '../../pages/src/shared/session';
import { h } from '../../pages/src/shared/ui';

export const NAV: [string, string][] = [
  ['/pages/consult-records', '会诊记录'],
  ['/pages/consult-apply', '发起会诊'],
];
export const STATES: [string, string][] = [
  ['scheduled', '待会诊'], ['in_progress', '会诊中'], ['awaiting_report', '待报告'], ['completed', '已完成'],
  ['draft', '草稿'], ['cancelled', '已取消'],
];
export const STATE_ZH: Record<string, string> = Object.fromEntries(STATES);
const TONE: Record<string, string> = { scheduled: 'warn', in_progress: 'ok', awaiting_report: 'warn', completed: 'ok', draft: '', cancelled: 'err' };
export const ANSWER_ZH: Record<string, string> = { needs_action: '待答复', accepted: '已接受', declined: '已拒绝' };

export function badge(status: string): HTMLElement {
  return h('span', { class: `badge ${TONE[status] || ''}`, 'data-status': status }, STATE_ZH[status] || status);
}

export async function call<T = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
  const all: Record<string, string> = { Accept: 'application/json', ...headers };
  const t = token();
  if (t) all.Authorization = `Bearer ${t}`;
  if (body !== undefined) all['Content-Type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(path, { method, headers: all, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, 'NETWORK', '网络连接失败，请检查网络后重试。');
  }
  const text = await response.text();
  let data: any = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (response.status === 401) toLogin('登录已过期，请重新登录。');
  if (!response.ok) {
    const e = data?.error || {};
    const message = /[\u4e00-\u9fff]/.test(e.message || '') ? e.message : '操作没有成功，请检查填写内容后重试。';
    throw new ApiError(response.status, e.code || 'UNKNOWN', message, Array.isArray(e.details) ? e.details : []);
  }
  return data as T;
}

// the shared frame() moves a #token= fragment into the session and rewrites the address to the bare path,
// which drops the query: keep it (read before frame() runs, put back after), so ?id= survives a reload
const SEARCH = location.search;

export function keepQuery(): void {
  if (SEARCH && !location.search) history.replaceState(null, '', location.pathname + SEARCH);
}

export function param(name: string): string {
  return new URLSearchParams(SEARCH || location.search).get(name) || '';
}

export function beijing(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString('zh-CN', { timeZone: 'Asia/Shanghai', hour12: false });
}

/** A refusal found in the page itself, shown like the service's. */
export function refuse(message: string): ApiError {
  return new ApiError(0, 'INPUT_REQUIRED', message);
}
