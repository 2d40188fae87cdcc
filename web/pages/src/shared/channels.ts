// The pay-later channels (docs/pay.md) as a patient knows them.
export const CHANNELS: Record<string, { name: string; account: string; hint: string }> = {
  UNIONPAY: { name: '银联无感支付（银行卡）', account: '银行卡号', hint: '16-19 位借记卡号' },
  HUIMIN: { name: '惠民就医', account: '惠民就医账号', hint: '如 HM0000001234' },
  YIBAO_CREDIT: { name: '医保信用就医', account: '医保信用账号', hint: '医保电子凭证绑定的信用账号' },
};
export const channelName = (c: string): string => CHANNELS[c]?.name || c;
