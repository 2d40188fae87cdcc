// 患者陪诊申请: the patient names a companion for one visit and chooses what they may see; the answer is
// shown once: the link (shared by SMS, the share sheet or copying), its QR code, and the invitation code
// (邀请码) to pass on by another channel. Below, who is invited and who is in the room, with 撤销.
import { announce, busy, clear, field, frame, h, PATIENT_NAV, when } from '../../pages/src/shared/ui';
import { call, relationLabel, RELATIONS, say } from './call';

const wanted = new URLSearchParams(location.hash.slice(1)).get('visit');
const { main } = frame('云陪诊 · 邀请陪诊人', { nav: PATIENT_NAV });

const visit = h('select', { name: 'visit_id', id: 'f-visit_id', required: true });
const name = h('input', { name: 'companion_name', id: 'f-companion_name', autocomplete: 'off', maxlength: 20, required: true });
const phone = h('input', { name: 'companion_phone', id: 'f-companion_phone', type: 'tel', inputmode: 'numeric', maxlength: 11, required: true });
const relation = h('select', { name: 'relation', id: 'f-relation' }, RELATIONS.map(([k, v]) => h('option', { value: k }, v)));
const box = (id: string, label: string, checked = false) => {
  const input = h('input', { type: 'checkbox', id, name: id, checked });
  return { input, row: h('div', { class: 'check' }, input, h('label', { for: id }, label)) };
};
const reports = box('scope-reports', '检查检验报告');
const prescriptions = box('scope-prescriptions', '处方');
const video = box('scope-video', '加入互联网医院视频问诊');
const sms = box('send-sms', '通过短信把邀请链接发给陪诊人', true);
const submit = h('button', { type: 'submit', id: 'invite' }, '发送邀请');
const slot = h('p', { class: 'error', hidden: true });
const form = h('form', { id: 'invite-form', novalidate: true },
  field('就诊', visit),
  field('陪诊人姓名', name),
  field('陪诊人手机号', phone, '11位手机号，陪诊人需用它接收验证码'),
  field('与您的关系', relation),
  h('fieldset', { class: 'card' }, h('legend', {}, '陪诊人可以看到'),
    h('p', { class: 'small muted' }, '就诊进度（当前环节、排队、下一步去哪里）始终可见；以下内容仅在勾选后可见。'),
    reports.row, prescriptions.row, video.row),
  sms.row, slot, submit);

const result = h('section', { id: 'result', class: 'card', hidden: true, 'aria-labelledby': 'result-h' });
const list = h('ul', { id: 'companions', class: 'cards' });
const listSlot = h('p', { class: 'error', hidden: true });

main.append(h('h2', {}, '邀请陪诊人'), form, result, h('h2', {}, '我的陪诊人'), listSlot, list);

function badge(status: string, label: string): HTMLElement {
  const kind = status === 'active' ? 'ok' : status === 'pending' ? 'warn' : 'err';
  return h('span', { class: `badge ${kind}`, 'data-status': status }, label);
}

async function refresh(): Promise<void> {
  if (!visit.value) return;
  try {
    const out = await call('GET', `/escort/visits/${encodeURIComponent(visit.value)}/companions`, undefined, 'patient');
    listSlot.hidden = true;
    if (!out.invitations.length) { clear(list, h('li', { class: 'card muted' }, '还没有邀请陪诊人。')); return; }
    clear(list, out.invitations.map((i: any) => h('li', { class: 'card', 'data-invitation': i.invitation_id },
      h('div', { class: 'row spread' },
        h('strong', {}, `${i.companion_name}（${relationLabel(i.relation)}）`), badge(i.status, i.in_room ? '在陪诊室' : i.status_label)),
      h('p', { class: 'small muted' }, `${i.companion_phone} · 邀请于 ${when(i.created_at)} · 有效至 ${when(i.expires_at)}`),
      i.status === 'locked' ? h('p', { class: 'notice' }, `邀请码连续输错${i.failures}次，该邀请已锁定。如是您本人的亲友，请重新邀请。`) : null,
      (i.status === 'pending' || i.status === 'active')
        ? h('button', { type: 'button', class: 'danger', 'data-revoke': i.invitation_id, onclick: () => revoke(i.invitation_id, i.companion_name) }, i.status === 'active' ? '撤销陪诊权限' : '撤销邀请')
        : null)));
  } catch (err) { say(listSlot, err); }
}

async function revoke(id: string, who: string): Promise<void> {
  try {
    await call('POST', `/escort/invitations/${encodeURIComponent(id)}/revoke`, undefined, 'patient');
    announce(`已撤销${who}的陪诊权限`);
  } catch (err) { say(listSlot, err); }
  await refresh();
}

function show(answer: any): void {
  const link = answer.link as string;
  const png = `data:image/png;base64,${answer.qr_png_base64}`;
  const svg = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(answer.qr_svg)}`;
  const copied = h('span', { class: 'small muted', role: 'status' });
  const share = h('button', { type: 'button', class: 'secondary', id: 'share' }, '分享邀请链接');
  share.addEventListener('click', async () => {
    const data = { title: '云陪诊邀请', text: '邀请您陪我就诊，打开链接加入（邀请码我另外告诉您）', url: link };
    if (navigator.share) { try { await navigator.share(data); return; } catch { /* closed */ } }
    try { await navigator.clipboard.writeText(link); copied.textContent = '链接已复制'; } catch { copied.textContent = '请长按链接复制'; }
  });
  clear(result,
    h('h2', { id: 'result-h' }, '邀请已创建'),
    h('p', {}, answer.sms_sent ? '邀请链接已通过短信发送给陪诊人。' : '请把邀请链接或二维码发给陪诊人。'),
    h('p', {}, '邀请码（请通过电话等其他方式告诉陪诊人，不要和链接一起发送）：'),
    h('p', { class: 'countdown', id: 'invitation-code' }, answer.invitation_code),
    h('img', { class: 'qr', src: png, alt: '陪诊邀请二维码：陪诊人用手机扫码加入', id: 'qr' }),
    h('p', { class: 'small' }, h('a', { href: link, id: 'invite-link', rel: 'noreferrer' }, '邀请链接'), ' · ',
      h('a', { href: svg, download: '陪诊邀请二维码.svg' }, '下载二维码（SVG）')),
    h('div', { class: 'row' }, share, copied),
    h('p', { class: 'small muted' }, `有效至 ${when(answer.invitation.expires_at)}，只能使用一次。`));
  result.hidden = false;
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  slot.hidden = true;
  busy(submit, true);
  try {
    const answer = await call('POST', '/escort/invitations', {
      visit_id: visit.value, companion_name: name.value.trim(), companion_phone: phone.value.trim(), relation: relation.value,
      scope: { reports: reports.input.checked, prescriptions: prescriptions.input.checked, video: video.input.checked },
      send_sms: sms.input.checked,
    }, 'patient');
    show(answer);
    announce('邀请已创建');
    form.reset();
    if (wanted) visit.value = wanted;
    await refresh();
  } catch (err) { say(slot, err); } finally { busy(submit, false); }
});
visit.addEventListener('change', () => { void refresh(); });

(async () => {
  const options: [string, string][] = [];
  try {
    const board = await call('GET', '/guide/dashboard', undefined, 'patient');
    for (const v of board.visits || []) options.push([v.visit_id, `${v.department || '门诊'} · ${v.state_label || ''} · ${when(v.appointment_at)}`]);
  } catch { /* guide unreachable: the visit in the link still works */ }
  if (wanted && !options.some(([id]) => id === wanted)) options.unshift([wanted, wanted]);
  clear(visit, options.map(([id, label]) => h('option', { value: id }, label)));
  if (wanted) visit.value = wanted;
  if (!options.length) say(slot, new Error('没有可邀请陪诊的就诊'));
  await refresh();
  window.setInterval(() => { void refresh(); }, 10000);
  document.body.dataset.ready = '1';
})();
