// escort's API calls: every refusal comes back with its stable code and the Chinese message the service
// wrote for it (expired, used, locked, revoked, wrong code with tries left, rate-limited with the wait).
// The companion's pages carry no login: a 401 is the session's end, never a redirect to the login page.
import { token, toLogin } from '../../pages/src/shared/session';

export class EscortError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly details: Record<string, any> = {}) {
    super(message);
  }
}

const SESSION = 'escort.session';
export const session = {
  get: (): string | null => sessionStorage.getItem(SESSION),
  set: (s: string): void => sessionStorage.setItem(SESSION, s),
  clear: (): void => sessionStorage.removeItem(SESSION),
};

export async function call<T = any>(method: string, path: string, body?: unknown, who: 'patient' | 'companion' = 'companion'): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (who === 'patient') {
    const t = token();
    if (t) headers.Authorization = `Bearer ${t}`;
  } else {
    const s = session.get();
    if (s) headers['X-Escort-Session'] = s;
  }
  let response: Response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), referrerPolicy: 'no-referrer' });
  } catch {
    throw new EscortError(0, 'NETWORK', '网络连接失败，请检查网络后重试。');
  }
  const text = await response.text();
  let data: any = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    const e = data?.error || {};
    if (response.status === 401 && who === 'patient') toLogin('登录已过期，请重新登录。');
    const message = typeof e.message === 'string' && /[\u4e00-\u9fff]/.test(e.message) ? e.message : '操作没有成功，请稍后再试。';
    throw new EscortError(response.status, e.code || 'UNKNOWN', message, (e.details && !Array.isArray(e.details)) ? e.details : {});
  }
  return data as T;
}

export function say(slot: HTMLElement, error: unknown): void {
  const e = error instanceof EscortError ? error : new EscortError(0, 'UNKNOWN', '操作没有成功，请稍后再试。');
  slot.hidden = false;
  slot.setAttribute('role', 'alert');
  slot.className = 'error';
  slot.textContent = `${e.message}（${e.code}）`;
}

export const RELATIONS: [string, string][] = [
  ['child', '子女'], ['spouse', '配偶'], ['parent', '父母'], ['sibling', '兄弟姐妹'], ['relative', '亲属'],
  ['friend', '朋友'], ['caregiver', '护工'], ['other', '其他'],
];
export const relationLabel = (r: string): string => RELATIONS.find(([k]) => k === r)?.[1] || r;
