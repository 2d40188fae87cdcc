// 陪诊人受邀陪诊: the companion opens the link (the handle is in the fragment, never sent to a server in a
// URL), proves the phone number with an SMS code and types the invitation code the patient gave them.
import { announce, busy, clear, field, frame, h } from '../../pages/src/shared/ui';
import { call, relationLabel, say, session } from './call';

const HANDLE = 'escort.handle';
const fromLink = new URLSearchParams(location.hash.slice(1)).get('h');
if (fromLink) { sessionStorage.setItem(HANDLE, fromLink); history.replaceState(null, '', location.pathname); }
const handle = sessionStorage.getItem(HANDLE) || '';

const { main } = frame('云陪诊 · 加入陪诊', { needsToken: false });
const intro = h('section', { class: 'card', id: 'intro' }, h('p', {}, '正在读取邀请…'));
const phone = h('input', { name: 'phone', id: 'f-phone', type: 'tel', inputmode: 'numeric', maxlength: 11, autocomplete: 'tel' });
const otp = h('input', { name: 'otp', id: 'f-otp', inputmode: 'numeric', maxlength: 6, autocomplete: 'one-time-code' });
const code = h('input', { name: 'invitation_code', id: 'f-invitation_code', maxlength: 8, autocomplete: 'off', autocapitalize: 'characters' });
const send = h('button', { type: 'button', class: 'secondary', id: 'send-otp' }, '获取验证码');
const join = h('button', { type: 'submit', id: 'join' }, '加入陪诊');
const slot = h('p', { class: 'error', hidden: true });
const form = h('form', { id: 'join-form', novalidate: true, hidden: true },
  field('您的手机号', phone, '须为患者邀请时填写的手机号'),
  h('div', { class: 'row' }, send),
  field('短信验证码', otp, '6位数字，5分钟内有效'),
  field('邀请码', code, '8位，请向患者本人索取'),
  slot, join);
main.append(intro, form);

let timer = 0;
function cooldown(seconds: number): void {
  window.clearInterval(timer);
  let left = seconds;
  send.disabled = true;
  send.textContent = `${left}秒后可重新获取`;
  timer = window.setInterval(() => {
    left -= 1;
    if (left <= 0) { window.clearInterval(timer); send.disabled = false; send.textContent = '重新获取验证码'; return; }
    send.textContent = `${left}秒后可重新获取`;
  }, 1000);
}

send.addEventListener('click', async () => {
  slot.hidden = true;
  try {
    const out = await call('POST', '/escort/join/otp', { handle, phone: phone.value.trim() });
    announce('如该号码为受邀号码，验证码已发送');
    slot.hidden = false; slot.className = 'notice'; slot.removeAttribute('role');
    slot.textContent = '如该号码是患者邀请的号码，验证码已通过短信发送。';
    cooldown(out.resend_after_s || 60);
  } catch (err) {
    say(slot, err);
    const wait = (err as any)?.details?.retry_after_s;
    if (wait) cooldown(Math.min(wait, 3600));
  }
});

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  slot.hidden = true;
  busy(join, true);
  try {
    const out = await call('POST', '/escort/join', { handle, phone: phone.value.trim(), otp: otp.value.trim(), invitation_code: code.value.trim() });
    session.set(out.session);
    sessionStorage.removeItem(HANDLE);
    location.assign('/pages/escort-room');
  } catch (err) { say(slot, err); } finally { busy(join, false); }
});

(async () => {
  if (!/^[A-Za-z0-9_-]{22}$/.test(handle)) {
    clear(intro, h('p', { class: 'error', role: 'alert' }, '邀请链接不完整，请从短信或二维码重新打开。'));
  } else {
    try {
      const p = await call('POST', '/escort/join/preview', { handle });
      clear(intro,
        h('h2', {}, `${p.companion_name}，您好`),
        h('p', {}, `您的亲友（${relationLabel(p.relation)}）邀请您陪同就诊${p.department ? `：${p.department}` : ''}。`),
        h('p', { class: 'small muted' }, '请验证手机号并输入邀请码后进入陪诊室。您只能看到患者允许的内容。'));
      form.hidden = false;
    } catch (err) {
      clear(intro);
      const s = h('p', { class: 'error' });
      intro.append(s);
      say(s, err);
    }
  }
  document.body.dataset.ready = '1';
})();
