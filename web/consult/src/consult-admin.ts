// 协作范围管理 (platform staff, role consult-admin): agreements between institutions (parties, services,
// departments, validity, status: suspend or reactivate) and doctors' credentials per institution.
import { busy, clear, clearFieldErrors, field, frame, h, showError } from '../../pages/src/shared/ui';
import { call, refuse } from './common';

const { main } = frame('协作范围管理', { wide: true });
const slot = h('p', { class: 'error', hidden: true });
const agreements = h('ul', { class: 'cards', id: 'agreements' });
const credentials = h('ul', { class: 'cards', id: 'credentials' });
const SERVICES: Record<string, string> = { mdt: '多学科会诊', imaging_review: '远程影像会诊' };
const STATUS: Record<string, string> = { active: '有效', suspended: '已暂停', terminated: '已终止' };

const input = (name: string, attrs: Record<string, string> = {}) => h('input', { name, ...attrs }) as HTMLInputElement;
const today = new Date().toLocaleDateString('sv-SE', { timeZone: 'Asia/Shanghai' });
const a = {
  name: input('agreement_name'), parties: input('parties', { placeholder: 'hospital-a, hospital-b' }),
  departments: input('departments', { placeholder: '留空表示全部科室' }),
  from: input('valid_from', { type: 'date', value: today }), to: input('valid_to', { type: 'date' }),
};
const agreementForm = h('form', { id: 'agreement-form', novalidate: true },
  field('协议名称', a.name), field('协作机构（逗号分隔）', a.parties), field('覆盖科室', a.departments),
  field('生效日期', a.from), field('截止日期', a.to), h('button', { type: 'submit' }, '新建协议'));
const org = input('org', { placeholder: 'hospital-a' });
const cr = {
  code: input('doctor_code'), name: input('doctor_name'), licence: input('licence_no'), title: input('title'), dept: input('department'),
};
const credentialForm = h('form', { id: 'credential-form', novalidate: true },
  field('工号', cr.code), field('姓名', cr.name), field('执业证书编码', cr.licence), field('职称', cr.title), field('科室', cr.dept),
  h('button', { type: 'submit' }, '登记医师'));

main.append(slot,
  h('section', { class: 'card' }, h('h2', {}, '协作协议'), agreements, h('h3', {}, '新建协议（多学科会诊）'), agreementForm),
  h('section', { class: 'card' }, h('h2', {}, '医师执业登记'), field('机构', org), credentials, credentialForm));

function list(value: string): string[] {
  return value.split(/[,，\s]+/).map((s) => s.trim()).filter(Boolean);
}

async function run(button: HTMLButtonElement | null, fn: () => Promise<unknown>): Promise<void> {
  slot.hidden = true;
  if (button) busy(button, true);
  try { await fn(); await load(); } catch (e) { showError(slot, e); }
  if (button) busy(button, false);
}

async function load(): Promise<void> {
  const { items } = await call('GET', '/consult/agreements');
  clear(agreements, items.length ? items.map((g: any) => {
    const next = g.status === 'active' ? 'suspended' : 'active';
    const toggle = h('button', { type: 'button', class: 'secondary' }, g.status === 'active' ? '暂停协议' : '恢复协议') as HTMLButtonElement;
    toggle.addEventListener('click', () => run(toggle, () => call('PUT', `/consult/agreements/${g.agreement_id}`, {
      name: g.name, parties: g.parties, services: g.services, departments: g.departments,
      valid_from: g.valid_from, valid_to: g.valid_to, status: next, version: g.version,
    })));
    return h('li', { class: 'card', 'data-agreement': g.agreement_id, 'data-status': g.status },
      h('div', { class: 'row spread' }, h('h3', {}, g.name), h('span', { class: `badge ${g.active ? 'ok' : 'err'}` }, g.active ? '生效中' : STATUS[g.status] || '已过期')),
      h('p', { class: 'small' }, `机构：${g.parties.join('、')} · 范围：${g.services.map((s: string) => SERVICES[s] || s).join('、')} · 科室：${g.departments.join('、') || '全部'} · ${g.valid_from} 至 ${g.valid_to}`),
      toggle);
  }) : h('li', { class: 'muted' }, '暂无协作协议。'));
  if (org.value.trim()) {
    const found = await call('GET', `/consult/credentials?org=${encodeURIComponent(org.value.trim())}`);
    clear(credentials, found.items.length ? found.items.map((d: any) => {
      const toggle = h('button', { type: 'button', class: 'secondary' }, d.status === 'active' ? '暂停执业' : '恢复执业') as HTMLButtonElement;
      toggle.addEventListener('click', () => run(toggle, () => call('PUT', `/consult/credentials/${d.org}/${d.doctor_code}`, {
        name: d.name, licence_no: d.licence_no, title: d.title, department: d.department, multi_site: d.multi_site,
        status: d.status === 'active' ? 'suspended' : 'active',
      })));
      return h('li', { class: 'card', 'data-doctor': d.doctor_code, 'data-status': d.status },
        h('p', {}, `${d.name}（${d.doctor_code}）${d.title} · ${d.department} · 证书 ${d.licence_no} · ${d.status === 'active' ? '有效' : '已暂停'}`), toggle);
    }) : h('li', { class: 'muted' }, '该机构暂无登记的医师。'));
  }
}

agreementForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  clearFieldErrors(agreementForm);
  const button = agreementForm.querySelector('button') as HTMLButtonElement;
  void run(button, async () => {
    if (!a.name.value.trim()) throw refuse('请填写协议名称');
    if (list(a.parties.value).length < 2) throw refuse('协作机构至少两家');
    if (!a.to.value || a.to.value < a.from.value) throw refuse('请填写不早于生效日期的截止日期');
    await call('POST', '/consult/agreements', {
      name: a.name.value.trim(), parties: list(a.parties.value), services: ['mdt'], departments: list(a.departments.value),
      valid_from: a.from.value, valid_to: a.to.value,
    });
  });
});

credentialForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const button = credentialForm.querySelector('button') as HTMLButtonElement;
  void run(button, async () => {
    if (!org.value.trim() || !cr.code.value.trim() || !cr.name.value.trim()) throw refuse('请填写机构、工号和姓名');
    await call('PUT', `/consult/credentials/${encodeURIComponent(org.value.trim())}/${encodeURIComponent(cr.code.value.trim())}`, {
      name: cr.name.value.trim(), licence_no: cr.licence.value.trim(), title: cr.title.value.trim(), department: cr.dept.value.trim(),
    });
  });
});
org.addEventListener('change', () => void run(null, async () => {}));

(async () => {
  try { await load(); } catch (e) { showError(slot, e); }
  document.body.dataset.ready = '1';
})();
