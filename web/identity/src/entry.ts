// /pages/entry: the home of the city hospitals' internet hospitals in 随申办 (上海市级医院互联网总平台).
// Pick a hospital, see its services (the ones built link to their pages, the rest say 即将上线 and link
// nowhere), enter its internet hospital in the channel the person came from (?channel=h5|wechat|alipay|app,
// kept for the tab) without a second login; the person's bound cards (bind a 医保电子凭证), linked
// hospitals and accounts. Login is the platform provider's (oidc.ts); every datum comes from the
// identity API with this tab's token, which the patient pages (/pages/pay ...) use as well.
import { api, ApiError } from '../../pages/src/shared/api';
import { token } from '../../pages/src/shared/session';
import { announce, busy, clear, clearFieldErrors, field, frame, h, showError } from '../../pages/src/shared/ui';
import { Exchange, launchTicket, LoginError, logout, startLogin } from './oidc';

type Channel = 'h5' | 'wechat' | 'alipay' | 'app';
const CHANNELS: Record<Channel, string> = { h5: '网页（随申办）', wechat: '微信小程序', alipay: '支付宝小程序', app: '医院 App' };
const CARD_TYPES: [string, string][] = [['medical_insurance', '医保电子凭证'], ['health_card', '电子健康卡'], ['visit_card', '就诊卡']];
const UPSTREAMS: Record<string, string> = { suishenban: '随申办', yiwangtongban: '一网通办', wechat: '微信', alipay: '支付宝' };

// The service catalogue: what each is called in an entry's services, and where it lives when it is built.
interface Service { key: string; name: string; offered: string; href?: string; opens?: string; what: string; }
const SERVICES: Service[] = [
  { key: 'film', name: '云影像', offered: '云影像', opens: 'film', what: '我的检查影像（云胶片）和报告，在手机上查看' },
  { key: 'pay', name: '先诊疗后付费', offered: '先诊疗后付费', href: '/pages/pay', what: '签约信用就医无感支付，看病后自动扣费' },
  { key: 'reports', name: '检查报告', offered: '检查报告', what: '检验检查报告查询' },
  { key: 'mdt', name: '多学科会诊', offered: '多学科会诊', what: '多位专家共同会诊（MDT）' },
  { key: 'escort', name: '云陪诊', offered: '云陪诊', what: '陪诊员陪同就医' },
  { key: 'guide', name: '智能导诊', offered: '智能导诊', href: '/pages/home', what: '就诊待办与每一步去哪里（管家式指引）' },
  { key: 'nav', name: '院内导航', offered: '院内导航', what: '院内路线指引' },
  { key: 'bot', name: '智能客服', offered: '智能客服', what: '常见问题在线解答' },
];

const params = new URLSearchParams(location.search);
const asked = params.get('channel') as Channel | null;
if (asked && asked in CHANNELS) sessionStorage.setItem('bianjie.entry.channel', asked);
const channel = (sessionStorage.getItem('bianjie.entry.channel') as Channel) || 'h5';

const { main } = frame('上海市级医院互联网总平台', { needsToken: false });
const slot = h('p', { class: 'error', hidden: true, id: 'entry-error' });
const who = h('section', { class: 'card', id: 'who', 'aria-labelledby': 'who-h' });
const hospitals = h('ul', { class: 'cards', id: 'hospitals' });
const detail = h('section', { id: 'hospital', 'aria-live': 'polite' });
const mine = h('section', { id: 'mine', 'aria-labelledby': 'mine-h' });
const consent = h('dialog', { id: 'consent', 'aria-labelledby': 'consent-h' });
const film = h('section', { id: 'film', 'aria-labelledby': 'film-h', hidden: true });
// what the film service answers, said in Chinese: DICOM modalities and BodyPartExamined values
const MODALITIES: Record<string, string> = { CT: 'CT', MR: '磁共振', US: '超声', CR: 'X线', DX: 'X线', MG: '乳腺钼靶', PT: 'PET', NM: '核医学', XA: '血管造影', RF: '透视', ES: '内镜' };
const BODY_PARTS: Record<string, string> = { CHEST: '胸部', HEAD: '头部', BRAIN: '脑', ABDOMEN: '腹部', PELVIS: '盆腔', NECK: '颈部', SPINE: '脊柱', CSPINE: '颈椎', LSPINE: '腰椎', KNEE: '膝关节', BREAST: '乳腺', HEART: '心脏', LIVER: '肝脏', EXTREMITY: '四肢', WHOLEBODY: '全身' };
let entries: any[] = [];
let person: any = null;
let chosen: string | null = sessionStorage.getItem('bianjie.entry.hospital');

main.append(
  h('p', { class: 'muted' }, `市级医院互联网医院统一入口。当前渠道：${CHANNELS[channel]}。`),
  slot, who,
  h('h2', { id: 'hospitals-h' }, '选择医院'), hospitals,
  detail,
  film,
  mine,
  consent);

function renderWho(): void {
  if (!token()) {
    clear(who,
      h('h2', { id: 'who-h' }, '登录'),
      h('p', {}, '使用随申办、一网通办、微信或支付宝登录一次，即可进入各家医院的互联网医院，无需再次登录。'),
      h('button', { type: 'button', id: 'login', onclick: () => void startLogin() }, '登录 / 注册'));
    return;
  }
  clear(who,
    h('h2', { id: 'who-h' }, person ? `您好，${person.name_masked || ''}` : '已登录'),
    person ? h('p', { class: 'muted small' }, `身份证号 ${person.id_number_masked || '未实名'}`) : null,
    h('button', { type: 'button', class: 'secondary', id: 'logout', onclick: () => logout() }, '退出登录'));
}

function renderHospitals(): void {
  clear(hospitals, entries.length ? entries.map((e) => h('li', { class: 'card row spread', 'data-hospital': e.hospital },
    h('div', { class: 'grow' }, h('h3', {}, e.name),
      h('p', { class: 'muted small' }, `${(e.services || []).length} 项服务`)),
    h('button', {
      type: 'button', class: chosen === e.hospital ? '' : 'secondary', 'aria-pressed': String(chosen === e.hospital),
      onclick: () => choose(e.hospital),
    }, chosen === e.hospital ? '已选择' : '选择', h('span', { class: 'visually-hidden' }, e.name)))) : h('li', { class: 'muted' }, '暂无已接入的医院。'));
}

function choose(hospital: string): void {
  chosen = hospital;
  sessionStorage.setItem('bianjie.entry.hospital', hospital);
  renderHospitals();
  renderDetail();
  const e = entries.find((x) => x.hospital === hospital);
  if (e) announce(`已选择${e.name}`);
  detail.querySelector<HTMLElement>('h2')?.focus();
}

function renderDetail(): void {
  const e = entries.find((x) => x.hospital === chosen);
  if (!e) { clear(detail); return; }
  const offered = new Set<string>(e.services || []);
  const cards = SERVICES.map((s) => {
    const on = offered.has(s.offered);
    const state = !on ? h('span', { class: 'badge' }, '本院暂未开通')
      : s.href ? h('a', { class: 'button', href: s.href, 'data-service': s.key, 'aria-label': `打开${s.name}` }, '打开')
        : s.opens === 'film' ? h('button', { type: 'button', 'data-service': s.key, 'aria-label': `打开${s.name}`, onclick: () => void openFilm() }, '打开')
          : h('span', { class: 'badge warn', 'data-soon': s.key }, '即将上线');
    return h('li', { class: 'card row spread', 'data-service-card': s.key },
      h('div', { class: 'grow' }, h('h3', {}, s.name), h('p', { class: 'muted small' }, s.what)), state);
  });
  const launchSlot = h('div', { id: 'launch-result', role: 'status' });
  const enter = h('button', { type: 'button', id: 'enter' }, `进入${e.name}互联网医院`);
  enter.addEventListener('click', () => void launch(e, enter, launchSlot));
  clear(detail,
    h('h2', { tabindex: '-1', id: 'hospital-h' }, e.name),
    h('p', { class: 'row' }, enter),
    h('p', { class: 'hint' }, `将通过${CHANNELS[channel]}进入，已登录状态会一并带入。`),
    launchSlot,
    h('h3', {}, '医院服务'),
    h('ul', { class: 'cards', id: 'services' }, cards));
}

async function launch(e: any, button: HTMLButtonElement, out: HTMLElement): Promise<void> {
  if (!token()) { await startLogin(); return; }
  slot.hidden = true;
  busy(button, true);
  try {
    let answer = await api('GET', `/identity/launch/${encodeURIComponent(e.hospital)}?channel=${channel}`);
    if (answer.consent_required) {
      if (!(await askConsent(e))) { clear(out, h('p', { class: 'muted' }, '您没有同意授权，未进入医院。')); return; }
      await api('POST', '/identity/consents', { hospital: e.hospital });
      answer = await api('GET', `/identity/launch/${encodeURIComponent(e.hospital)}?channel=${channel}`);
    }
    if (answer.mode === 'oidc_initiated') {
      location.assign(answer.target.url);
      return;
    }
    const ticket = await launchTicket(answer.exchange as Exchange);
    if (answer.target.url) {
      // the hospital's page reads the one-time ticket from the fragment (never sent in a request line)
      location.assign(`${answer.target.url}#bj_ticket=${encodeURIComponent(ticket)}`);
      return;
    }
    // a mini program: its container opens appId + path; the ticket rides in the path's query
    const path = `${answer.target.path || answer.target.page}?bj_ticket=${encodeURIComponent(ticket)}`;
    clear(out, h('div', { class: 'card', id: 'mini-program' },
      h('p', {}, `请在${CHANNELS[channel]}中打开${e.name}：`),
      h('p', { class: 'small' }, `小程序 ${answer.target.app_id}，页面 ${answer.target.path || answer.target.page}`),
      h('p', { class: 'hint' }, `一次性登录凭证已生成，${answer.expires_in} 秒内有效。`),
      h('p', { class: 'visually-hidden', 'data-mini-path': path }, path)));
    announce('已生成进入医院的一次性凭证');
  } catch (err) {
    if (err instanceof LoginError) { slot.hidden = false; slot.setAttribute('role', 'alert'); slot.textContent = err.message; }
    else showError(slot, err);
  } finally {
    busy(button, false);
  }
}

// 我的影像: the person's own studies (GET /film/my/studies, the provider's token), newest first; a study
// opens in the cloud-film viewer through a fresh link whose URL names no patient (POST .../view).
let filmCursor: string | null = null;

async function openFilm(more = false): Promise<void> {
  if (!token()) { await startLogin(); return; }
  const names = Object.fromEntries(entries.map((e) => [e.hospital, e.name]));
  if (!more) {
    filmCursor = null;
    clear(film, h('h2', { id: 'film-h', tabindex: '-1' }, '我的影像'),
      h('p', { class: 'muted small' }, '各医院检查的影像（云胶片），按检查日期从近到远。'),
      h('ul', { class: 'cards', id: 'studies' }), h('p', { class: 'error', hidden: true, id: 'film-error' }));
    film.hidden = false;
  }
  const list = film.querySelector<HTMLElement>('#studies')!;
  const errSlot = film.querySelector<HTMLElement>('#film-error')!;
  film.querySelector('#film-more')?.remove();
  try {
    const q = new URLSearchParams({ limit: '10' });
    if (more && filmCursor) q.set('cursor', filmCursor);
    const page = await api('GET', `/film/my/studies?${q}`);
    filmCursor = page.cursor;
    for (const st of page.items as any[]) {
      const kinds = (st.modalities || []).map((m: string) => MODALITIES[m] || m).join('、') || '影像';
      const parts = (st.body_parts || []).map((b: string) => BODY_PARTS[b] || b).join('、');
      const where = names[st.hospital] || st.institution || st.hospital || '';
      const view = h('button', { type: 'button', 'data-study': st.study_uid, 'aria-label': `查看影像：${st.date || ''} ${kinds}` }, '查看影像');
      view.addEventListener('click', async () => {
        busy(view, true);
        try { location.assign((await api('POST', st.view)).url); } catch (err) { showError(errSlot, err); busy(view, false); }
      });
      list.append(h('li', { class: 'card row spread', 'data-study-card': st.study_uid },
        h('div', { class: 'grow' },
          h('h3', {}, `${st.date || '日期不详'} ${kinds}`),
          h('p', { class: 'small' }, [st.description, parts ? `部位：${parts}` : null].filter(Boolean).join(' · ')),
          h('p', { class: 'muted small' }, where, st.has_report ? h('span', { class: 'badge ok' }, ' 有报告') : null)),
        view));
    }
    if (!list.children.length) list.append(h('li', { class: 'muted' }, '暂无您的检查影像。检查后医院上传影像，这里就能看到。'));
    if (filmCursor) {
      const next = h('button', { type: 'button', class: 'secondary', id: 'film-more' }, '加载更多');
      next.addEventListener('click', () => void openFilm(true));
      film.append(next);
    }
    if (!more) { announce(`我的影像：${page.items.length} 项检查`); film.querySelector<HTMLElement>('#film-h')?.focus(); }
  } catch (err) {
    showError(errSlot, err);
  }
}

function askConsent(e: any): Promise<boolean> {
  clear(consent,
    h('h2', { id: 'consent-h' }, `授权${e.name}`),
    h('p', {}, `${e.name}将获得：您在该院的用户标识、实名认证等级。不会获得您的身份证号。`),
    h('p', { class: 'hint' }, '同意后进入该院不需再次登录；授权记录可在申康统一认证平台查询。'),
    h('div', { class: 'row' },
      h('button', { type: 'button', id: 'consent-yes', value: 'yes' }, '同意并进入'),
      h('button', { type: 'button', class: 'secondary', id: 'consent-no', value: 'no' }, '不同意')));
  return new Promise((resolve) => {
    const done = (yes: boolean) => { consent.close(); resolve(yes); };
    consent.querySelector('#consent-yes')?.addEventListener('click', () => done(true), { once: true });
    consent.querySelector('#consent-no')?.addEventListener('click', () => done(false), { once: true });
    consent.addEventListener('cancel', () => resolve(false), { once: true });
    consent.showModal();
  });
}

let consents: any[] = [];

function askWithdraw(name: string): Promise<boolean> {
  clear(consent,
    h('h2', { id: 'consent-h' }, `撤回对${name}的授权`),
    h('p', {}, `撤回后，${name}不能再凭您的登录身份为您办理业务，进入该院时会重新询问您是否授权。`),
    h('div', { class: 'row' },
      h('button', { type: 'button', id: 'withdraw-yes' }, '确认撤回'),
      h('button', { type: 'button', class: 'secondary', id: 'withdraw-no' }, '取消')));
  return new Promise((resolve) => {
    const done = (yes: boolean) => { consent.close(); resolve(yes); };
    consent.querySelector('#withdraw-yes')?.addEventListener('click', () => done(true), { once: true });
    consent.querySelector('#withdraw-no')?.addEventListener('click', () => done(false), { once: true });
    consent.addEventListener('cancel', () => resolve(false), { once: true });
    consent.showModal();
  });
}

function consentList(names: Record<string, string>): HTMLElement {
  const shown = consents.filter((c) => names[c.hospital]); // hospitals with an entry (not the platform itself)
  const slotW = h('p', { class: 'error', hidden: true, id: 'withdraw-error' });
  const list = h('ul', { class: 'cards', id: 'consents' }, shown.length ? shown.map((c) => {
    const button = h('button', { type: 'button', class: 'secondary', 'data-withdraw': c.hospital, 'aria-label': `撤回授权：${names[c.hospital]}` }, '撤回授权');
    button.addEventListener('click', async () => {
      if (!(await askWithdraw(names[c.hospital]))) return;
      busy(button, true);
      try {
        await api('DELETE', `/identity/consents/${encodeURIComponent(c.hospital)}`);
        announce(`已撤回对${names[c.hospital]}的授权`);
        await loadPerson();
        mine.querySelector<HTMLElement>('#consents-h')?.focus();
      } catch (err) { showError(slotW, err); busy(button, false); }
    });
    const when = c.consented_at ? new Date(c.consented_at * 1000).toLocaleDateString('zh-CN') : '';
    return h('li', { class: 'card row spread', 'data-consent': c.hospital },
      h('div', { class: 'grow' }, h('p', {}, names[c.hospital]), h('p', { class: 'muted small' }, `${when} 授权：用户标识、实名认证等级`)),
      button);
  }) : h('li', { class: 'muted' }, '您还没有授权任何医院。'));
  return h('div', {}, list, slotW);
}

function renderMine(): void {
  if (!token() || !person) { clear(mine); return; }
  const names = Object.fromEntries(entries.map((e) => [e.hospital, e.name]));
  const cards = (person.cards || []) as any[];
  const linked = Object.keys(person.hospitals || {});
  const form = h('form', { id: 'bind', novalidate: true });
  const hospital = h('select', { name: 'hospital', required: true },
    entries.map((e) => h('option', { value: e.hospital, selected: e.hospital === chosen }, e.name)));
  const type = h('select', { name: 'card_type', required: true }, CARD_TYPES.map(([v, t]) => h('option', { value: v }, t)));
  const number = h('input', { name: 'card_no', autocomplete: 'off', inputmode: 'text', required: true });
  const formSlot = h('p', { class: 'error', hidden: true, id: 'bind-error' });
  const submit = h('button', { type: 'submit' }, '绑定');
  form.append(
    field('医院', hospital),
    field('卡证类型', type),
    field('卡号', number, '医保电子凭证号、电子健康卡号或就诊卡号，以医院核验为准'),
    formSlot, submit);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearFieldErrors(form);
    formSlot.hidden = true;
    busy(submit, true);
    try {
      const card = await api('POST', '/identity/cards', { hospital: hospital.value, card_type: type.value, card_no: number.value.trim() });
      announce(`已绑定${card.card_name} ${card.card_no_masked}`);
      await loadPerson();
      mine.querySelector<HTMLElement>('#cards-h')?.focus();
    } catch (err) {
      if (err instanceof ApiError && err.code === 'CARD_NOT_VERIFIED') {
        formSlot.hidden = false; formSlot.setAttribute('role', 'alert');
        formSlot.textContent = '医院没有核验通过这张卡，请检查卡号是否本人所有。';
      } else showError(formSlot, err, form);
    } finally {
      busy(submit, false);
    }
  });
  clear(mine,
    h('h2', { id: 'mine-h' }, '我的卡证与医院'),
    h('h3', { id: 'cards-h', tabindex: '-1' }, '已绑定的卡证'),
    h('ul', { class: 'cards', id: 'cards' }, cards.length ? cards.map((c) => h('li', { class: 'card' },
      h('span', { class: 'badge ok' }, '已绑定'), ` ${c.card_name} ${c.card_no_masked}`,
      h('p', { class: 'muted small' }, names[c.hospital] || c.hospital))) : h('li', { class: 'muted' }, '还没有绑定卡证。')),
    h('h3', {}, '绑定卡证'), form,
    h('h3', {}, '已关联的医院'),
    h('ul', { class: 'cards', id: 'linked' }, linked.length ? linked.map((k) => h('li', { class: 'card' }, names[k] || k))
      : h('li', { class: 'muted' }, '绑卡后，该院的就诊档案会与您关联。')),
    h('h3', { id: 'consents-h', tabindex: '-1' }, '我的授权'),
    consentList(names),
    h('h3', {}, '已关联的登录方式'),
    h('p', { id: 'accounts' }, (person.accounts || []).map((a: string) => UPSTREAMS[a] || a).join('、') || '无'));
}

async function loadPerson(): Promise<void> {
  if (!token()) { person = null; return; }
  try {
    person = await api('GET', '/identity/me');
    consents = (await api('GET', '/identity/consents')).consents;
  } catch (err) { showError(slot, err); }
  renderWho();
  renderMine();
}

async function start(): Promise<void> {
  if (params.get('login') === '1' && !token()) { await startLogin(); return; } // from /pages/login
  renderWho();
  try { entries = (await api('GET', '/identity/entries')).entries; } catch (err) { showError(slot, err); }
  if (chosen && !entries.some((e) => e.hospital === chosen)) chosen = null;
  renderHospitals();
  renderDetail();
  await loadPerson();
  document.body.dataset.ready = '1';
}

void start();
