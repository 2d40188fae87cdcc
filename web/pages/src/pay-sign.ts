// STAND-IN of a channel's own signing page (本地模拟): a real channel's 签约 happens on its page, which the
// app redirects to and which redirects back. On the local stage this page plays it: the patient enters
// the account and agrees, and it signs through POST /pay/agreements (the stand-in channel answers at
// once; docs/pay.md "Not done yet": a page-based channel needs a PENDING agreement and AGREEMENT.SIGNED).
import { api } from './shared/api';
import { CHANNELS } from './shared/channels';
import { restoreDrafts } from './shared/session';
import { announce, busy, clearFieldErrors, field, frame, h, setFieldError, showError } from './shared/ui';

const code = new URLSearchParams(location.search).get('channel') || '';
const channel = CHANNELS[code];
const { main } = frame(channel ? `${channel.name} 签约` : '签约');
if (!channel) {
  main.append(h('p', { class: 'error', role: 'alert' }, '不支持的签约渠道，请返回重新选择。'), h('a', { class: 'button', href: '/pages/pay' }, '返回'));
} else {
  const account = h('input', { name: 'account', inputmode: code === 'UNIONPAY' ? 'numeric' : 'text', autocomplete: 'off', required: true });
  const agree = h('input', { type: 'checkbox', name: 'agree', id: 'f-agree', 'data-draft': 'agree' });
  const slot = h('p', { class: 'error', hidden: true });
  const submit = h('button', { type: 'submit' }, '同意协议并签约');
  const form = h('form', { novalidate: true, class: 'card standin' },
    h('p', { class: 'notice' }, '本地演示：这是支付渠道签约页的模拟（stand-in），不是真实银行页面。'),
    field(channel.account, account, channel.hint),
    h('div', { class: 'field', 'data-field': 'agree' },
      h('div', { class: 'check' }, agree, h('label', { for: 'f-agree' }, '我已阅读并同意《信用就医无感支付服务协议》，授权医院结算时从该账户扣款')),
      h('p', { class: 'field-error', id: 'f-agree-error', hidden: true })),
    slot,
    h('div', { class: 'row spread' }, h('a', { class: 'button secondary', href: '/pages/pay' }, '取消'), submit));
  agree.setAttribute('aria-describedby', 'f-agree-error');
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearFieldErrors(form); slot.hidden = true;
    let bad = false;
    if (!account.value.trim()) { setFieldError(form, 'account', `请填写${channel.account}`); bad = true; }
    if (!agree.checked) { setFieldError(form, 'agree', '请先阅读并同意协议'); bad = true; }
    if (bad) { (form.querySelector('[aria-invalid="true"]') as HTMLElement)?.focus(); return; }
    busy(submit, true);
    try {
      const a = await api('POST', '/pay/agreements', { channel: code, account: account.value.trim() });
      sessionStorage.setItem('bianjie.pay.notice', `${channel.name} 签约成功（${a.account}），扣费顺序第${a.priority}位。`);
      location.assign('/pages/pay');
    } catch (err) {
      showError(slot, err, form);
      if ((err as any).code === 'CHANNEL_REJECTED') setFieldError(form, 'account', '渠道拒绝了该账号，请核对或更换');
      announce('签约没有成功');
    } finally { busy(submit, false); }
  });
  main.append(form);
  restoreDrafts();
  document.body.dataset.ready = '1';
}
