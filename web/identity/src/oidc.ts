// The entry pages as an OpenID client of the platform provider (申康统一认证): the public client
// `bianjie-entry`, authorization code + PKCE S256 from the page itself (RFC 9700 2.1.1: no secret in a
// browser). The verifier, state and nonce live in sessionStorage for the one round trip; the access token
// goes where every patient page finds it (session.ts: this tab only), so /pages/pay and the others use
// the provider's token without a second login. No refresh token is kept in the page: when the access
// token runs out, the next login round trip rides the provider's session cookie (8 h) and shows no page.

export const CLIENT_ID = 'bianjie-entry';
const PENDING = 'bianjie.entry.pending';
const ID_TOKEN = 'bianjie.entry.id_token';
const TOKEN = 'bianjie.token';

export function redirectUri(): string {
  return `${location.origin}/pages/entry-callback`;
}

function b64url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function random(n: number): string {
  return b64url(crypto.getRandomValues(new Uint8Array(n)));
}

async function s256(verifier: string): Promise<string> {
  const hash = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return b64url(new Uint8Array(hash));
}

/** Off to the provider's authorization endpoint; it shows the login (随申办, 一网通办, 微信, 支付宝). */
export async function startLogin(prompt?: 'login'): Promise<void> {
  const verifier = random(48);
  const state = random(16);
  const nonce = random(16);
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, nonce }));
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: CLIENT_ID,
    redirect_uri: redirectUri(),
    scope: 'openid profile',
    state,
    nonce,
    code_challenge: await s256(verifier),
    code_challenge_method: 'S256',
  });
  if (prompt) query.set('prompt', prompt);
  location.assign(`/identity/oidc/authorize?${query}`);
}

export class LoginError extends Error {}

function claimsOf(jwt: string): Record<string, unknown> {
  const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
  return JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(part), (c) => c.charCodeAt(0))));
}

/** The callback: state checked, the code redeemed with the verifier, the nonce checked in the ID token. */
export async function finishLogin(params: URLSearchParams): Promise<void> {
  const raw = sessionStorage.getItem(PENDING);
  sessionStorage.removeItem(PENDING);
  if (params.get('error')) {
    throw new LoginError(params.get('error') === 'access_denied' ? '您取消了授权。' : '登录没有完成，请重新登录。');
  }
  const pending = raw ? JSON.parse(raw) : null;
  if (!pending || !params.get('code') || params.get('state') !== pending.state) {
    throw new LoginError('登录请求已失效（可能来自另一个页面），请重新登录。');
  }
  const form = new URLSearchParams({
    grant_type: 'authorization_code',
    code: params.get('code') as string,
    code_verifier: pending.verifier,
    redirect_uri: redirectUri(),
    client_id: CLIENT_ID,
  });
  let response: Response;
  try {
    response = await fetch('/identity/oidc/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body: form,
    });
  } catch {
    throw new LoginError('网络连接失败，请检查网络后重试。');
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok || !body.access_token) throw new LoginError('登录没有完成，请重新登录。');
  if (body.id_token && claimsOf(body.id_token).nonce !== pending.nonce) throw new LoginError('登录信息不一致，请重新登录。');
  sessionStorage.setItem(TOKEN, body.access_token);
  if (body.id_token) sessionStorage.setItem(ID_TOKEN, body.id_token);
}

/** RP-initiated logout: the provider ends its session (and tells the hospitals), then back to the entry. */
export function logout(): void {
  const hint = sessionStorage.getItem(ID_TOKEN);
  sessionStorage.removeItem(TOKEN);
  sessionStorage.removeItem(ID_TOKEN);
  const query = new URLSearchParams({ client_id: CLIENT_ID, post_logout_redirect_uri: `${location.origin}/pages/entry` });
  if (hint) query.set('id_token_hint', hint);
  location.assign(`/identity/oidc/logout?${query}`);
}

export interface Exchange {
  token_endpoint: string;
  grant_type: string;
  subject_token_type: string;
  requested_token_type: string;
  audience: string;
  channel: string;
}

/** A launch ticket: the RFC 8693 exchange the launch answer describes, of this tab's own access token. */
export async function launchTicket(exchange: Exchange): Promise<string> {
  const form = new URLSearchParams({
    grant_type: exchange.grant_type,
    subject_token: sessionStorage.getItem(TOKEN) || '',
    subject_token_type: exchange.subject_token_type,
    requested_token_type: exchange.requested_token_type,
    audience: exchange.audience,
    channel: exchange.channel,
    client_id: CLIENT_ID,
  });
  // relative: the endpoint is on this origin (the answer's absolute URL names the same one)
  const response = await fetch(new URL(exchange.token_endpoint).pathname, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
    body: form,
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok || !body.access_token) throw new LoginError('没能取得进入医院的一次性凭证，请重试。');
  return body.access_token as string;
}
