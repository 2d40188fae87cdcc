// Where a page sends the person when the API says their sign-in is gone (401). What they had typed is
// kept in sessionStorage by the page and filled in again when they come back signed in. Real sign-in is
// the identity service's (issue 12): 去登录 goes to the 随申办 entry's login (/pages/entry), whose callback
// brings the person back here with a token and on to where they were; on the local stage the banner's links (or `bianjie pages links`)
// bring a fresh demo token in the URL fragment, which this page passes on to where the person was.
import { captureToken, returnPath, token } from './shared/session';
import { frame, h } from './shared/ui';

captureToken();
if (token()) location.replace(returnPath());
const { main } = frame('请重新登录', { needsToken: false });
const reason = sessionStorage.getItem('bianjie.login_reason') || '请先登录。';
const local = document.querySelector('meta[name="bianjie-stage"]')?.getAttribute('content') === 'local';
main.append(
  h('p', { role: 'alert', id: 'reason' }, reason),
  h('p', {}, '登录后将回到您刚才的页面，已填写的内容会自动恢复。'),
  local ? h('p', { class: 'notice' }, '本地演示：运行 .venv/bin/bianjie pages links 获取新的演示登录链接，在本标签页打开即可。') : null,
  h('a', { class: 'button', href: '/pages/entry?login=1' }, '去登录'));
document.body.dataset.ready = '1';
