// 会诊详情: the case (patient, visit records, purpose, symptoms, difficulties, diagnosis), attachments with
// short-lived links, participants and their answers, each doctor's
// report; and what the caller may do now: accept or decline, enter the room, end the meeting, write and
// sign the report, amend it.
import { claims } from '../../pages/src/shared/session';
import { announce, busy, clear, field, frame, h, showError } from '../../pages/src/shared/ui';
import { ANSWER_ZH, badge, beijing, call, keepQuery, NAV, param, refuse } from './common';

const { main } = frame('会诊详情', { wide: true, nav: NAV });
keepQuery();
const slot = h('p', { class: 'error', hidden: true });
const body = h('div', { id: 'case' });
main.append(slot, body);
const id = param('id');
const me = `${claims().hospital}/${claims().sub}`;

function act(label: string, run: () => Promise<unknown>, cls = ''): HTMLButtonElement {
  const b = h('button', { type: 'button', class: cls }, label) as HTMLButtonElement;
  b.addEventListener('click', async () => {
    busy(b, true);
    slot.hidden = true;
    try {
      await run();
      announce(`${label}：已完成`);
      await load();
    } catch (e) {
      showError(slot, e);
      busy(b, false);
    }
  });
  return b;
}

function row(label: string, value: string): HTMLElement {
  return h('tr', {}, h('th', { scope: 'row' }, label), h('td', {}, value));
}

function reports(c: any): HTMLElement {
  return h('section', { class: 'card', id: 'reports' }, h('h2', {}, '诊断报告'),
    c.reports.length ? c.reports.map((r: any) => h('article', { class: 'report', 'data-doctor': r.doctor_code, 'data-report-status': r.status },
      h('h3', {}, `${r.doctor_name}（${r.org}）`, ' ', h('span', { class: 'badge ok' }, { draft: '草稿', final: '已签名', amended: '已修订并签名' }[r.status as string] || r.status)),
      h('p', {}, r.opinion), r.recommendations ? h('p', {}, `建议：${r.recommendations}`) : null,
      r.signed_at ? h('p', { class: 'muted small' }, `签名时间 ${beijing(r.signed_at)} · SM3 ${String(r.report_sm3).slice(0, 16)}…`) : null,
      r.previous.length ? h('details', {}, h('summary', {}, `早先的版本（${r.previous.length}）`),
        r.previous.map((p: any) => h('p', { class: 'small' }, `第 ${p.version} 版（${beijing(p.signed_at)}）：${p.opinion}`))) : null))
      : h('p', { class: 'muted' }, '尚无诊断报告。'));
}

function writer(c: any, mine: any): HTMLElement | null {
  const mineReport = c.reports.find((r: any) => `${r.org}/${r.doctor_code}` === me);
  const open = ['in_progress', 'awaiting_report'].includes(c.status) || (c.status === 'completed' && mineReport);
  if (!mine || mine.answer !== 'accepted' || !open) return null;
  const opinion = h('textarea', { name: 'opinion', rows: '5' }, mineReport?.status === 'draft' ? mineReport.opinion : '') as HTMLTextAreaElement;
  const rec = h('textarea', { name: 'recommendations', rows: '3' }, mineReport?.status === 'draft' ? mineReport.recommendations : '') as HTMLTextAreaElement;
  const signed = mineReport && mineReport.status !== 'draft';
  const need = () => { if (!opinion.value.trim()) throw refuse('请填写诊断意见'); };
  const section = h('section', { class: 'card', id: 'write' }, h('h2', {}, signed ? '修订我的报告' : '撰写我的报告'),
    field('诊断意见', opinion), field('治疗建议', rec));
  const text = () => ({ opinion: opinion.value.trim(), recommendations: rec.value.trim() });
  if (signed) {
    section.append(act('提交修订并签名', async () => { need(); await call('POST', `/consult/consultations/${id}/reports/mine/amendment`, text()); }));
  } else {
    section.append(h('div', { class: 'row' },
      act('保存草稿', async () => { need(); await call('PUT', `/consult/consultations/${id}/reports/mine`, text()); }, 'secondary'),
      c.status === 'awaiting_report' ? act('签名提交', async () => {
        if (opinion.value.trim()) await call('PUT', `/consult/consultations/${id}/reports/mine`, text());
        await call('POST', `/consult/consultations/${id}/reports/mine/signature`);
      }) : h('p', { class: 'muted small' }, '会诊结束（待报告）后可签名提交。')));
  }
  return section;
}

function actions(c: any, role: string, mine: any): HTMLElement {
  const base = `/consult/consultations/${id}`;
  const out = h('div', { class: 'row', id: 'actions' });
  if (role === 'invitee' && c.status === 'scheduled') {
    if (mine.answer !== 'accepted') out.append(act('接受邀请', () => call('POST', `${base}/response`, { answer: 'accept' })));
    if (mine.answer !== 'declined') out.append(act('拒绝邀请', () => call('POST', `${base}/response`, { answer: 'decline', reason: '时间冲突' }), 'secondary'));
  }
  if (['scheduled', 'in_progress'].includes(c.status) && (role === 'applicant' || mine?.answer === 'accepted')) {
    out.append(act('进入会诊室', async () => {
      const room = await call('POST', `${base}/join`);
      announce(`已获得会诊室 ${room.room} 的入会凭证，有效期至 ${beijing(room.expires_at)}`);
    }));
  }
  if (role === 'applicant' && c.status === 'in_progress') out.append(act('结束会诊', () => call('POST', `${base}/end`), 'secondary'));
  if (role === 'applicant' && ['draft', 'scheduled'].includes(c.status)) {
    out.append(act('取消会诊', () => call('POST', `${base}/cancel`, { reason: '申请医生取消' }), 'danger'));
  }
  return out;
}

async function load(): Promise<void> {
  try {
    const c = await call('GET', `/consult/consultations/${encodeURIComponent(id)}`);
    const role = `${c.applicant.org}/${c.applicant.doctor_code}` === me ? 'applicant' : 'invitee';
    const mine = c.participants.find((p: any) => `${p.org}/${p.doctor_code}` === me);
    clear(body,
      h('section', { class: 'card' },
        h('div', { class: 'row spread' }, h('h2', {}, c.purpose), badge(c.status)),
        h('table', {}, h('tbody', {},
          row('会诊编号', c.consultation_id),
          row('会诊时间', `${beijing(c.start)}，${c.duration_min} 分钟`),
          row('会诊方式', c.location.kind === 'video' ? '远程视频会诊' : `线下：${c.location.room}`),
          row('申请医生', `${c.applicant.name}（${c.applicant.title}，${c.applicant.department}，${c.applicant.org}）`),
          row('患者', `${c.patient_name}（${c.patient_id_masked}）`),
          row('症状描述', c.symptoms), row('诊断难点', c.difficulties), row('初步诊断', c.diagnosis),
          row('知情同意', c.consent ? `已记录（${c.consent.reference}）` : '未记录'))),
        actions(c, role, mine)),
      h('section', { class: 'card' }, h('h2', {}, '问诊记录'),
        h('ul', {}, c.visits.map((v: any) => h('li', {}, `${v.visit_date} ${v.department}（${v.visit_id}）：${v.summary}`)))),
      h('section', { class: 'card', id: 'participants' }, h('h2', {}, '参与医生'),
        h('ul', {}, c.participants.map((p: any) => h('li', { 'data-doctor': p.doctor_code, 'data-answer': p.answer },
          `${p.name}（${p.title}，${p.department}，${p.org}）：${ANSWER_ZH[p.answer] || p.answer}${p.reason ? `，${p.reason}` : ''}`)))),
      h('section', { class: 'card', id: 'attachments' }, h('h2', {}, '附件'),
        c.attachments.length ? h('ul', {}, c.attachments.map((a: any) => h('li', { 'data-attachment': a.status },
          a.download_url ? h('a', { href: a.download_url, rel: 'noopener' }, a.file_name) : a.file_name,
          ` · ${{ pending: '检查中', clean: '已通过检查', rejected: '未通过' }[a.status as string]}${a.reason ? `：${a.reason}` : ''}`))) : h('p', { class: 'muted' }, '暂无附件。')),
      writer(c, mine),
      reports(c));
  } catch (e) {
    showError(slot, e);
  }
  document.body.dataset.ready = '1';
}

void load();
