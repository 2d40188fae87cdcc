// Small DOM helpers and the page frame every page shares: a header with the large-text and high-contrast
// switches (kept in localStorage: a display choice, not personal data), a skip link target, a polite live
// region for what changed, and field-level errors tied to their inputs (aria-invalid, aria-describedby).
import { ApiError, messageFor } from './api';
import { captureToken, token, toLogin } from './session';
import './base.css';

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | ((e: any) => void)>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v as EventListener);
    else if (k === 'class') el.className = String(v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

export function clear(el: Element, ...children: (Child | Child[])[]): void {
  el.replaceChildren();
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
}

let live: HTMLElement;
export function announce(text: string): void {
  if (!live) return;
  live.textContent = '';
  window.setTimeout(() => { live.textContent = text; }, 30);
}

function toggle(name: string, label: string): HTMLButtonElement {
  const on = localStorage.getItem(`bianjie.${name}`) === '1';
  document.documentElement.classList.toggle(name, on);
  const button = h('button', { type: 'button', class: 'switch', 'aria-pressed': String(on), 'data-switch': name }, label);
  button.addEventListener('click', () => {
    const now = !document.documentElement.classList.contains(name);
    document.documentElement.classList.toggle(name, now);
    button.setAttribute('aria-pressed', String(now));
    localStorage.setItem(`bianjie.${name}`, now ? '1' : '0');
  });
  return button;
}

export interface Frame { main: HTMLElement; }

/** Sets up the page: token from the fragment, the header, <main id="main">. Staff pages pass wide. */
export function frame(title: string, opts: { wide?: boolean; nav?: [string, string][]; needsToken?: boolean } = {}): Frame {
  captureToken();
  document.documentElement.classList.toggle('wide', !!opts.wide);
  const app = document.getElementById('app') as HTMLElement;
  live = h('div', { id: 'live', role: 'status', 'aria-live': 'polite', class: 'visually-hidden' });
  const nav = opts.nav && opts.nav.length
    ? h('nav', { 'aria-label': '页面导航' }, h('ul', {}, opts.nav.map(([href, text]) =>
      h('li', {}, h('a', { href, 'aria-current': location.pathname === href ? 'page' : null }, text)))))
    : null;
  const main = h('main', { id: 'main', tabindex: '-1' });
  app.append(
    h('header', { class: 'top' },
      h('h1', {}, title),
      h('div', { class: 'switches', role: 'group', 'aria-label': '显示设置' }, toggle('large-text', '大字'), toggle('high-contrast', '高对比度'))),
    ...(nav ? [nav] : []), // a page without a nav (login, the entry) would otherwise show the text "null"
    main,
    live,
  );
  if (opts.needsToken !== false && !token()) toLogin('请先登录。');
  return { main };
}

export const PATIENT_NAV: [string, string][] = [
  ['/pages/home', '首页待办'],
  ['/pages/pay', '无感支付'],
  ['/pages/rx', '电子处方'],
  ['/pages/prefs', '通知设置'],
];

export function money(fen: number | null | undefined): string {
  if (fen === null || fen === undefined) return '-';
  return `¥${(fen / 100).toFixed(2)}`;
}

const BEIJING = new Intl.DateTimeFormat('zh-CN', {
  timeZone: 'Asia/Shanghai', month: 'numeric', day: 'numeric', hour: '2-digit', minute: '2-digit', hour12: false,
});
export function when(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : BEIJING.format(d);
}

/** A labelled form control with an error slot; the control gets data-draft so a login keeps its value. */
export function field(label: string, control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement, hint?: string): HTMLElement {
  const id = control.id || `f-${control.name}`;
  control.id = id;
  if (!control.dataset.draft && control.name) control.dataset.draft = control.name;
  const err = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
  const hintEl = hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null;
  control.setAttribute('aria-describedby', [hintEl ? hintEl.id : '', err.id].filter(Boolean).join(' '));
  return h('div', { class: 'field', 'data-field': control.name }, h('label', { for: id }, label), control, hintEl, err);
}

export function setFieldError(form: HTMLElement, name: string, message: string | null): void {
  const wrap = form.querySelector<HTMLElement>(`.field[data-field="${CSS.escape(name)}"]`);
  if (!wrap) return;
  const control = wrap.querySelector('input,select,textarea') as HTMLElement;
  const err = wrap.querySelector('.field-error') as HTMLElement | null;
  if (!control || !err) return; // a wrapper without an error slot (a plain checkbox row)
  if (message) {
    control.setAttribute('aria-invalid', 'true');
    err.textContent = `错误：${message}`;
    err.hidden = false;
  } else {
    control.removeAttribute('aria-invalid');
    err.textContent = '';
    err.hidden = true;
  }
}

export function clearFieldErrors(form: HTMLElement): void {
  form.querySelectorAll<HTMLElement>('.field').forEach((f) => setFieldError(form, f.dataset.field as string, null));
}

/** Shows a refusal where it belongs: at the named fields when the API names them, else in the action's slot. */
export function showError(slot: HTMLElement, error: unknown, form?: HTMLElement, fieldMap: (f: string) => string | null = (f) => f.split('.').pop() || null): void {
  const e = error instanceof ApiError ? error : new ApiError(0, 'UNKNOWN', messageFor('UNKNOWN'));
  let placed = false;
  if (form) {
    for (const d of e.details || []) {
      const name = d.field ? fieldMap(d.field) : null;
      if (name && form.querySelector(`.field[data-field="${CSS.escape(name)}"]`)) {
        setFieldError(form, name, problemText(d.type, d.problem));
        placed = true;
      }
    }
  }
  slot.hidden = false;
  slot.setAttribute('role', 'alert');
  slot.textContent = placed ? `${e.message}` : `${e.message}（${e.code}）`;
}

function problemText(type?: string, problem?: string): string {
  if (!type) return problem || '内容有误';
  if (type === 'missing') return '必填';
  if (type.startsWith('string_pattern') || type === 'string_pattern_mismatch') return '格式不正确';
  if (type.startsWith('string_too')) return '长度不符合要求';
  if (type.startsWith('greater') || type.startsWith('less')) return '数值超出范围';
  if (type.includes('literal') || type.includes('enum')) return '请从选项中选择';
  return '内容有误';
}

export function busy(button: HTMLButtonElement, on: boolean): void {
  button.disabled = on;
  button.setAttribute('aria-busy', String(on));
}
