// What the three prescription desk pages share (rx-doctor, rx-hospital, rx-pharmacy): the states and
// steps in Chinese, the pre-check rule codes in Chinese, the demo catalogue's drugs for the pickers, and
// a prescription's drug lines as a table.
import { h, when } from './ui';

export const STATES: Record<string, [string, string]> = {
  precheck: ['已通过事前审核，待签名', 'warn'], signed: ['已签名，待上传', 'warn'], valid: ['有效（已上传医保）', 'ok'],
  released: ['已流转，待院外购药', 'ok'], authorized: ['药店已读取凭证', 'ok'], reviewed: ['药师审核通过', 'ok'],
  review_rejected: ['审方未通过', 'err'], dispensed: ['已取药', 'ok'], revoked: ['已撤销', 'err'], expired: ['已过期', 'err'],
};

export function badge(status: string): HTMLElement {
  const [label, tone] = STATES[status] || [status, ''];
  return h('span', { class: `badge ${tone}`, 'data-status': status }, label);
}

// rx's pre-check rule codes (bianjie/rx/rules.py, docs/rx.md) as the doctor reads them
export const RULES: Record<string, string> = {
  CERT_TYPE_UNSUPPORTED: '目前只支持居民身份证。',
  CERT_NO_INVALID: '身份证号不正确（校验位或出生日期有误）。',
  PRESCRIBED_IN_FUTURE: '开方时间晚于当前时间。',
  VISIT_AFTER_PRESCRIPTION: '就诊时间晚于开方时间。',
  VALIDITY_TOO_LONG: '有效期过长：普通处方最长 3 天，长期处方最长 84 天。',
  ALREADY_EXPIRED: '按此有效期，处方已经过期。',
  REUSE_NEEDS_LONG_TERM: '只有长期处方可以多次使用。',
  MAX_USES_INVALID: '可多次使用的处方，使用次数至少为 2。',
  MIN_INTERVAL_REQUIRED: '多次使用的处方需填写最短间隔天数。',
  REUSE_WINDOW_TOO_SHORT: '有效期内容纳不下这些使用次数和间隔。',
  REUSE_FIELDS_WITHOUT_FLAG: '未勾选多次使用，却填写了次数或间隔。',
  DIAGNOSIS_REQUIRED: '请至少填写一个诊断。',
  MAIN_DIAGNOSIS: '必须有且只有一个主诊断。',
  DIAGNOSIS_CODE_INVALID: '诊断编码不是 ICD-10 格式（例如 E11.900）。',
  DRUGS_REQUIRED: '请至少开一种药品。',
  TOO_MANY_LINES: '一张处方最多 5 种药品。',
  DRUG_UNKNOWN: '医保药品目录中没有这个药品编码。',
  DRUG_DUPLICATE: '同一药品出现在两行。',
  DRUG_CONTROLLED: '麻醉药品和精神药品不能开具电子处方。',
  RX_TYPE_MISMATCH: '西药和中成药须分开开具处方。',
  DRUG_NOT_CIRCULABLE: '该药品不能流转到院外（如冷链药品），请取消“可院外购药”或换药。',
  DRUG_NOT_FOR_LONG_TERM: '该药品不能开长期处方。',
  DAYS_SUPPLY_TOO_LONG: '用药天数过长：普通处方最长 7 天，长期处方最长 84 天。',
  DOSE_EXCEEDS_MAX: '每日剂量超过该药品的最大日剂量。',
  QUANTITY_EXCEEDS_DAYS: '开药数量超过用药天数所需。',
  QUANTITY_TOO_SMALL: '开药数量不足用药天数的一半。',
  DOCTOR_NOT_REGISTERED: '您在本院没有登记签名证书，不能开具电子处方。',
};

export const FREQUENCIES: [string, string][] = [
  ['qd', '每日1次'], ['bid', '每日2次'], ['tid', '每日3次'], ['qid', '每日4次'], ['qn', '每晚1次'], ['prn', '必要时'],
];

// the demo catalogue (bianjie/rx/catalogue.py); a hospital's own drug dictionary would come from its HIS
export const DRUGS: [string, string][] = [
  ['XA10BAE024A001010100001', '盐酸二甲双胍片 0.5g'], ['XC08CAA091A001010100002', '苯磺酸氨氯地平片 5mg'],
  ['XC10AAA103A001010100003', '阿托伐他汀钙片 20mg'], ['XC09CAX217E001010100004', '缬沙坦胶囊 80mg'],
  ['XB01ACA056A012010100005', '阿司匹林肠溶片 100mg'], ['XJ01CAA040E001010100007', '阿莫西林胶囊 0.25g'],
  ['XA02BCA211E012010100009', '奥美拉唑肠溶胶囊 20mg'], ['XB03BAJ073A001010100012', '甲钴胺片 0.5mg'],
  ['XA10ABM048B002010100013', '门冬胰岛素注射液（冷链，不可流转）'], ['XN05BAD052A001010100015', '地西泮片（精神药品）'],
];

// demo catalogue prices per pack, in cents (the till's own price list in real life)
const PRICES: Record<string, number> = {
  XA10BAE024A001010100001: 850, XC08CAA091A001010100002: 1260, XC10AAA103A001010100003: 2150, XC09CAX217E001010100004: 1830,
  XB01ACA056A012010100005: 1520, XJ01CAA040E001010100007: 960, XA02BCA211E012010100009: 1460, XB03BAJ073A001010100012: 2460,
};

export function drugTable(rx: any): HTMLElement {
  return h('table', { class: 'lines' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, '药品'), h('th', { scope: 'col' }, '数量'), h('th', { scope: 'col' }, '用法'))),
    h('tbody', {}, (rx.drugs || []).map((d: any) => h('tr', {},
      h('td', {}, `${d.drug_name} ${d.spec}`), h('td', {}, `${d.quantity}${d.pack_unit}`),
      h('td', {}, `每次 ${d.dose}${d.unit}，${(FREQUENCIES.find(([k]) => k === d.frequency) || [d.frequency, d.frequency])[1]}，${d.days} 天`)))));
}

export function summary(rx: any): HTMLElement {
  return h('p', { class: 'muted small' },
    `处方号 ${rx.hi_rxno} · 患者 ${rx.patient_masked} · ${rx.dept_name} ${rx.doctor_name} · 开方 ${when(rx.prescribed_at)} · 有效期至 ${when(rx.valid_end)}`);
}

/** A settlement for a prescription's lines at the catalogue's prices (a demo till: the HIS or the pharmacy's
 *  POS computes it; insurance pays 70 %). */
export function demoSettlement(rx: any, prefix: string): { settlement: any; items: any[] } {
  const items = (rx.drugs || []).map((d: any) => ({
    med_code: d.med_code, quantity: d.quantity, amount_cents: (PRICES[d.med_code] || 1000) * d.quantity, batch_no: 'B2401',
  }));
  const total = items.reduce((s: number, i: any) => s + i.amount_cents, 0);
  const fund = Math.round(total * 0.7);
  return {
    settlement: {
      setl_id: `${prefix}-${rx.rx_id}-${rx.uses + 1}`, total_cents: total, fund_pay_cents: fund, account_pay_cents: 0,
      cash_pay_cents: total - fund, settled_at: new Date().toISOString(),
    },
    items,
  };
}
