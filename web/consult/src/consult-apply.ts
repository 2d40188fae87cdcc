// 发起会诊申请: the seed's form, field by field (participating doctors, date and duration, the patient and
// the chosen visit record, purpose, location, symptoms, diagnostic difficulties), the patient's consent,
// then submit. Checked here in Chinese before it is sent; the service's refusals land at their fields.
import { busy, clear, clearFieldErrors, field, frame, h, setFieldError, showError } from '../../pages/src/shared/ui';
import { call, NAV } from './common';

const { main } = frame('发起会诊申请', { wide: true, nav: NAV });
const slot = h('p', { class: 'error', hidden: true });
const form = h('form', { id: 'apply', novalidate: true });
const doctors = h('fieldset', { id: 'invitees' }, h('legend', {}, '参与会诊的医生（可多选）'));
main.append(slot, form);

const input = (name: string, attrs: Record<string, string> = {}) => h('input', { name, ...attrs }) as HTMLInputElement;
const area = (name: string) => h('textarea', { name, rows: '3' }) as HTMLTextAreaElement;
const select = (name: string, options: [string, string][]) =>
  h('select', { name }, options.map(([v, t]) => h('option', { value: v }, t))) as HTMLSelectElement;

const tomorrow = new Date(Date.now() + 86400000).toLocaleDateString('sv-SE', { timeZone: 'Asia/Shanghai' });
const c = {
  date: input('date', { type: 'date', value: tomorrow }),
  time: input('time', { type: 'time', value: '14:00' }),
  duration: select('duration_min', [['30', '30 分钟'], ['45', '45 分钟'], ['60', '60 分钟'], ['90', '90 分钟'], ['120', '120 分钟']]),
  name: input('patient_name', { autocomplete: 'off' }),
  id: input('id_number', { autocomplete: 'off', inputmode: 'text' }),
  sex: select('sex', [['male', '男'], ['female', '女'], ['unknown', '未说明']]),
  visitId: input('visit_id'),
  visitDate: input('visit_date', { type: 'date' }),
  visitDept: input('visit_department'),
  visitSummary: area('visit_summary'),
  purpose: input('purpose'),
  kind: select('location_kind', [['video', '远程视频会诊'], ['room', '线下会诊室']]),
  room: input('room'),
  symptoms: area('symptoms'),
  difficulties: area('difficulties'),
  diagnosis: area('diagnosis'),
  consentMethod: select('consent_method', [['written', '书面知情同意书'], ['electronic', '电子签署'], ['verbal_witnessed', '口头同意（有见证人）']]),
  consentRef: input('consent_reference'),
};
const submit = h('button', { type: 'submit' }, '提交会诊申请') as HTMLButtonElement;
form.append(
  h('section', { class: 'card' }, h('h2', {}, '会诊医生'), doctors),
  h('section', { class: 'card desk' },
    h('h2', {}, '会诊时间与地点'),
    field('会诊日期', c.date), field('开始时间（北京时间）', c.time), field('会诊时长', c.duration),
    field('会诊方式', c.kind), field('会诊地点', c.room, '线下会诊时填写，如：门诊楼5楼会诊室')),
  h('section', { class: 'card desk' },
    h('h2', {}, '患者与问诊记录'),
    field('患者姓名', c.name), field('身份证号', c.id), field('性别', c.sex),
    field('问诊记录编号', c.visitId), field('就诊日期', c.visitDate), field('就诊科室', c.visitDept),
    field('问诊记录摘要', c.visitSummary)),
  h('section', { class: 'card' },
    h('h2', {}, '会诊内容'),
    field('会诊目的', c.purpose), field('症状描述', c.symptoms), field('诊断难点', c.difficulties), field('初步诊断', c.diagnosis)),
  h('section', { class: 'card desk' },
    h('h2', {}, '患者知情同意'),
    field('同意方式', c.consentMethod), field('同意书编号', c.consentRef, '提交前须记录患者的知情同意')),
  h('p', { class: 'muted small' }, '附件（检查报告 PDF、图片）由医院信息系统通过会诊接口上传，上传后显示在会诊详情中。'),
  submit,
);

const key = crypto.randomUUID();

function problems(): [string, string][] {
  const out: [string, string][] = [];
  const need: [HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement, string][] = [
    [c.date, '请选择会诊日期'], [c.time, '请选择开始时间'], [c.name, '请填写患者姓名'], [c.id, '请填写患者身份证号'],
    [c.visitId, '请填写问诊记录编号'], [c.visitDate, '请选择就诊日期'], [c.visitDept, '请填写就诊科室'],
    [c.visitSummary, '请填写问诊记录摘要'], [c.purpose, '请填写会诊目的'], [c.symptoms, '请填写症状描述'],
    [c.difficulties, '请填写诊断难点'], [c.diagnosis, '请填写初步诊断'], [c.consentRef, '请填写知情同意书编号'],
  ];
  for (const [el, text] of need) if (!el.value.trim()) out.push([el.name, text]);
  if (c.id.value.trim() && !/^\d{17}[\dXx]$|^\d{15}$/.test(c.id.value.trim())) out.push(['id_number', '身份证号应为18位（最后一位可以是X）']);
  if (c.kind.value === 'room' && !c.room.value.trim()) out.push(['room', '线下会诊请填写会诊地点']);
  if (c.date.value && c.time.value && start().getTime() <= Date.now()) out.push(['time', '会诊时间已过，请选择将来的时间']);
  if (!invitees().length) out.push(['invitees', '请至少选择一位参与会诊的医生']);
  return out;
}

function start(): Date {
  return new Date(`${c.date.value}T${c.time.value}:00+08:00`);
}

function invitees(): { org: string; doctor_code: string }[] {
  return Array.from(doctors.querySelectorAll<HTMLInputElement>('input[type=checkbox]:checked')).map((b) => {
    const [org, code] = (b.value || '').split('|');
    return { org, doctor_code: code };
  });
}

const FIELD_OF: Record<string, string> = {
  'patient.name': 'patient_name', 'patient.id_number': 'id_number', purpose: 'purpose', symptoms: 'symptoms',
  difficulties: 'difficulties', diagnosis: 'diagnosis', start: 'time', 'location.room': 'room',
};

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  clearFieldErrors(form);
  slot.hidden = true;
  doctors.removeAttribute('aria-invalid');
  const found = problems();
  if (found.length) {
    for (const [name, text] of found) {
      if (name === 'invitees') { doctors.setAttribute('aria-invalid', 'true'); continue; }
      setFieldError(form, name, text);
    }
    slot.hidden = false;
    slot.setAttribute('role', 'alert');
    slot.textContent = `还有 ${found.length} 处需要填写或修改：${found.map(([, t]) => t).join('；')}`;
    return;
  }
  busy(submit, true);
  try {
    const body = {
      invitees: invitees(),
      start: start().toISOString(),
      duration_min: Number(c.duration.value),
      patient: { name: c.name.value.trim(), id_number: c.id.value.trim().toUpperCase(), sex: c.sex.value },
      visits: [{ visit_id: c.visitId.value.trim(), visit_date: c.visitDate.value, department: c.visitDept.value.trim(), summary: c.visitSummary.value.trim() }],
      purpose: c.purpose.value.trim(),
      location: { kind: c.kind.value, room: c.room.value.trim() },
      symptoms: c.symptoms.value.trim(),
      difficulties: c.difficulties.value.trim(),
      diagnosis: c.diagnosis.value.trim(),
    };
    const created = await call('POST', '/consult/consultations', body, { 'Idempotency-Key': key });
    const id = created.consultation_id;
    await call('POST', `/consult/consultations/${id}/consent`, { method: c.consentMethod.value, reference: c.consentRef.value.trim() });
    await call('POST', `/consult/consultations/${id}/submit`);
    location.assign(`/pages/consult-detail?id=${encodeURIComponent(id)}`);
  } catch (e) {
    showError(slot, e, form, (f) => FIELD_OF[f.replace(/^body\./, '')] || null);
    busy(submit, false);
  }
});

(async () => {
  try {
    const { items } = await call('GET', '/consult/colleagues');
    clear(doctors, h('legend', {}, '参与会诊的医生（可多选）'),
      items.length ? items.map((d: any, i: number) => h('div', { class: 'row' },
        h('input', { type: 'checkbox', id: `doc-${i}`, value: `${d.org}|${d.doctor_code}`, 'data-doctor': d.doctor_code }),
        h('label', { for: `doc-${i}` }, `${d.name}（${d.title}，${d.department}，${d.org}${d.via === 'same-institution' ? '，本院' : '，协作医院'}）`)))
        : h('p', { class: 'muted' }, '暂无可邀请的医生：请联系平台管理员确认协作协议与医师登记。'));
  } catch (e) {
    showError(slot, e);
  }
  document.body.dataset.ready = '1';
})();
