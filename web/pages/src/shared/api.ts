// The API client: relative URLs (the pages share the APIs' origin), the bearer token, and every refusal
// turned into Chinese by its stable code (kit.errors), with the field it concerns when the API names one.
import { toLogin, token } from './session';

const MESSAGES: Record<string, string> = {
  VALIDATION_FAILED: '填写的内容有误，请按提示修改。',
  BODY_REQUIRED: '请求内容为空，请重新填写。',
  TOKEN_MISSING: '请先登录。',
  TOKEN_EXPIRED: '登录已过期，请重新登录。',
  TOKEN_INVALID: '登录信息无效，请重新登录。',
  TOKEN_MALFORMED: '登录信息无效，请重新登录。',
  TOKEN_KIND: '当前账号不能使用此页面。',
  ROLE_REQUIRED: '您没有执行此操作的权限。',
  KIND_REQUIRED: '当前账号不能使用此页面。',
  NOT_FOUND: '没有找到相关信息。',
  INTERNAL: '系统繁忙，请稍后再试。',
  // guide
  VISIT_NOT_FOUND: '没有找到这次就诊。',
  TEMPLATE_UNKNOWN: '该消息模板已下线，请刷新后重试。',
  // pay
  AGREEMENT_EXISTS: '该渠道已签约，无需重复签约。',
  AGREEMENT_NOT_FOUND: '没有找到该签约，请刷新后重试。',
  CHANNEL_REJECTED: '支付渠道拒绝了本次签约，请检查卡号或换一个渠道。',
  CHANNEL_UNAVAILABLE: '支付渠道暂时无法连接，请稍后再试。',
  ORDER_MISMATCH: '签约列表已变化，请刷新后重新排序。',
  NO_ACTIVE_AGREEMENT: '您还没有有效的签约。',
  // rx
  RX_NOT_FOUND: '没有找到该处方。',
  PRESCRIPTION_NOT_FOUND: '没有找到该处方。',
  RX_NOT_YOURS: '该处方不属于当前登录的人。',
  PRECHECK_FAILED: '处方未通过事前审核，请按提示修改。',
  SIGNATURE_INVALID: '电子签名无效，请重新签名。',
  RX_STATE: '处方当前状态不允许此操作。',
  INVALID_TRANSITION: '处方当前状态不允许此操作。',
  CREDENTIAL_EXPIRED: '医保电子凭证已过期，请让患者刷新二维码。',
  CREDENTIAL_INVALID: '医保电子凭证无效，请重新扫码。',
  // identity (the 随申办 entry)
  ENTRY_NOT_FOUND: '没有找到这家医院的入口。',
  CHANNEL_NOT_AVAILABLE: '这家医院暂未开通当前渠道的入口，请换一个渠道。',
  PERSON_NOT_FOUND: '还没有您的档案，请先用随申办或一网通办完成实名登录。',
  CARD_NOT_VERIFIED: '医院没有核验通过这张卡，请检查卡号是否本人所有。',
};

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: { field?: string; problem?: string; type?: string }[] = [],
  ) {
    super(message);
  }
}

export function messageFor(code: string, fallback?: string): string {
  return MESSAGES[code] || fallback || '操作没有成功，请稍后再试。';
}

export async function api<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, 'NETWORK', '网络连接失败，请检查网络后重试。');
  }
  const text = await response.text();
  let data: any = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (response.status === 401) {
    const code = data?.error?.code || 'TOKEN_INVALID';
    toLogin(messageFor(code));
  }
  if (!response.ok) {
    const error = data?.error || {};
    const code = error.code || (response.status >= 500 ? 'INTERNAL' : 'UNKNOWN');
    throw new ApiError(response.status, code, messageFor(code), error.details || []);
  }
  return data as T;
}
