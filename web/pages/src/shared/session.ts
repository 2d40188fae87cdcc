// The signed-in person's token and what they typed.
//
// A banner link (local stage) or the login page brings a token in the URL's fragment (#token=...), which
// browsers never send to a server; it moves into sessionStorage (this tab only, gone when it closes) and
// leaves the address bar at once. When an API answers 401 the page keeps every field marked data-draft
// in sessionStorage and sends the person to log in; back on the page, the fields are filled again.

const TOKEN = 'bianjie.token';
const RETURN = 'bianjie.return';
const DRAFTS = 'bianjie.drafts.';

export function captureToken(): void {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get('token');
  if (token) {
    sessionStorage.setItem(TOKEN, token);
    history.replaceState(null, '', location.pathname);
  }
}

export function token(): string | null {
  return sessionStorage.getItem(TOKEN);
}

export function claims(): Record<string, unknown> {
  const t = token();
  if (!t) return {};
  try {
    const part = t.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const text = new TextDecoder().decode(Uint8Array.from(atob(part), (c) => c.charCodeAt(0)));
    return JSON.parse(text);
  } catch {
    return {};
  }
}

function draftFields(): (HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement)[] {
  return Array.from(document.querySelectorAll<HTMLInputElement>('[data-draft]'));
}

export function saveDrafts(): void {
  const values: Record<string, string> = {};
  for (const el of draftFields()) {
    if (el.type === 'password') continue; // never kept
    values[el.dataset.draft as string] = el.type === 'checkbox' ? String((el as HTMLInputElement).checked) : el.value;
  }
  sessionStorage.setItem(DRAFTS + location.pathname, JSON.stringify(values));
}

/** Fills the fields again after a login; returns how many were restored. */
export function restoreDrafts(): number {
  const raw = sessionStorage.getItem(DRAFTS + location.pathname);
  if (!raw) return 0;
  sessionStorage.removeItem(DRAFTS + location.pathname);
  const values = JSON.parse(raw) as Record<string, string>;
  let n = 0;
  for (const el of draftFields()) {
    const v = values[el.dataset.draft as string];
    if (v === undefined) continue;
    if (el.type === 'checkbox') (el as HTMLInputElement).checked = v === 'true';
    else el.value = v;
    el.dispatchEvent(new Event('input', { bubbles: true }));
    n += 1;
  }
  return n;
}

export function toLogin(reason: string): never {
  saveDrafts();
  sessionStorage.removeItem(TOKEN);
  sessionStorage.setItem(RETURN, location.pathname);
  sessionStorage.setItem('bianjie.login_reason', reason);
  location.assign('/pages/login');
  throw new Error('redirecting to login');
}

export function returnPath(): string {
  const path = sessionStorage.getItem(RETURN) || '/pages/home';
  return /^\/pages\/[a-z-]+$/.test(path) ? path : '/pages/home';
}
