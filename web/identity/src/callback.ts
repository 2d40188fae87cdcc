// /pages/entry-callback: the provider sends the browser back here with the code (the redirect URI the
// demo registers for `bianjie-entry`). The code is redeemed from the page (PKCE), then the person goes
// back where a page sent them to log in (an expired token on /pages/pay, say), or to the entry.
import { returnPath } from '../../pages/src/shared/session';
import { frame, h } from '../../pages/src/shared/ui';
import { finishLogin, LoginError } from './oidc';

const { main } = frame('正在登录', { needsToken: false });
const status = h('p', { role: 'status', id: 'status' }, '正在完成登录，请稍候……');
main.append(status);
const params = new URLSearchParams(location.search);
history.replaceState(null, '', location.pathname); // the code leaves the address bar at once

finishLogin(params).then(() => {
  const back = sessionStorage.getItem('bianjie.return') ? returnPath() : '/pages/entry';
  sessionStorage.removeItem('bianjie.return');
  location.replace(back);
}).catch((e) => {
  status.removeAttribute('role');
  status.textContent = '';
  main.append(
    h('p', { role: 'alert', id: 'error' }, e instanceof LoginError ? e.message : '登录没有完成，请重新登录。'),
    h('a', { class: 'button', href: '/pages/entry' }, '返回首页'));
  document.body.dataset.ready = '1';
});
