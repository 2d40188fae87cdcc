// The editors' statistics console (内容统计): fetches /content/stats with the staff token (taken once from
// the address's #token= fragment into this tab's sessionStorage, then removed from the address) and draws
// views and visitors per day, and the official account's reads, shares and followers, with uPlot (canvas).
// Every chart has its numbers in a table beside it, for screen readers and for copying.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './console.css';

const KEY = 'bianjie.content.staff-token';

type OaDay = { followers: number; new_followers: number; lost_followers: number; reads: number; shares: number };
type Day = { day: string; views: number; visitors: number; oa: OaDay | null };
type Report = {
  from: string;
  to: string;
  days: Day[];
  top_items: { id: string; views: number; kind?: string; column?: string; title?: string }[];
  top_columns: { column: string; label: string; views: number; page_views: number }[];
  top_terms: { term: string; count: number }[];
  totals: { views: number; visitors: number; reads: number; shares: number; followers: number | null };
};

const COLUMNS: Record<string, string> = {
  news: '医联动态', health: '健康资讯', science: '科普知识', guides: '疾病防治指南', video: '科普视频',
};

function token(): string | null {
  const found = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
  if (found) {
    sessionStorage.setItem(KEY, decodeURIComponent(found[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  return sessionStorage.getItem(KEY);
}

function beijingDay(offsetDays: number): string {
  const t = new Date(Date.now() + 8 * 3600 * 1000 + offsetDays * 86400 * 1000);
  return t.toISOString().slice(0, 10);
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string | number): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function fill(id: string, rows: (string | number)[][]): void {
  const body = document.querySelector(`#${id} tbody`) as HTMLTableSectionElement;
  body.replaceChildren(
    ...rows.map((cells) => {
      const tr = el('tr');
      cells.forEach((c, i) => {
        const cell = i === 0 ? el('th', c) : el('td', c);
        if (i === 0) cell.setAttribute('scope', 'row');
        tr.append(cell);
      });
      return tr;
    }),
  );
}

const charts: uPlot[] = [];

function chart(id: string, labels: string[], series: { label: string; values: (number | null)[]; color: string;
  scale?: string }[]): void {
  const target = document.getElementById(id) as HTMLElement;
  target.replaceChildren();
  const x = labels.map((_, i) => i);
  const scales: uPlot.Scales = { x: { time: false } };
  const axes: uPlot.Axis[] = [
    { values: (_u, splits) => splits.map((i) => labels[i]?.slice(5) ?? ''), stroke: '#1a1a1a' },
    { stroke: '#1a1a1a' },
  ];
  if (series.some((s) => s.scale === 'right')) {
    axes.push({ scale: 'right', side: 1, stroke: '#1a1a1a', grid: { show: false } });
  }
  const plot = new uPlot(
    {
      width: Math.min(760, Math.max(360, window.innerWidth - 560)),
      height: 280,
      scales,
      axes,
      cursor: { show: true },
      legend: { show: true },
      series: [
        { label: '日期', value: (_u, v) => (v == null ? '' : labels[v] ?? '') },
        ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, scale: s.scale ?? 'y',
          points: { show: true, size: 6 } })),
      ],
    },
    [x, ...series.map((s) => s.values)] as uPlot.AlignedData,
    target,
  );
  charts.push(plot);
  target.dataset.drawn = String(labels.length);
}

function render(report: Report): void {
  const labels = report.days.map((d) => d.day);
  charts.splice(0).forEach((c) => c.destroy());
  chart('chart-views', labels, [
    { label: '浏览量', values: report.days.map((d) => d.views), color: '#0b5394' },
    { label: '访客数', values: report.days.map((d) => d.visitors), color: '#b45309' },
  ]);
  fill('table-views', report.days.map((d) => [d.day, d.views, d.visitors]));
  chart('chart-oa', labels, [
    { label: '阅读', values: report.days.map((d) => d.oa?.reads ?? null), color: '#0b5394' },
    { label: '分享', values: report.days.map((d) => d.oa?.shares ?? null), color: '#15803d' },
    { label: '关注人数', values: report.days.map((d) => d.oa?.followers ?? null), color: '#7c3aed', scale: 'right' },
  ]);
  fill('table-oa', report.days.map((d) => d.oa
    ? [d.day, d.oa.followers, d.oa.new_followers, d.oa.lost_followers, d.oa.reads, d.oa.shares]
    : [d.day, '—', '—', '—', '—', '—']));
  fill('table-items', report.top_items.map((i) => [i.title ?? i.id, COLUMNS[i.column ?? ''] ?? i.column ?? '', i.views]));
  fill('table-columns', report.top_columns.map((c) => [c.label, c.views, c.page_views]));
  fill('table-terms', report.top_terms.map((t) => [t.term, t.count]));
  (document.getElementById('report') as HTMLElement).hidden = false;
}

async function load(from: string, to: string): Promise<void> {
  const status = document.getElementById('status') as HTMLElement;
  const staff = token();
  if (!staff) {
    status.className = 'error';
    status.textContent = '缺少员工令牌：请从 make run 横幅中的链接打开本页（#token=…）。';
    return;
  }
  status.className = 'meta';
  status.textContent = '正在加载…';
  const answer = await fetch(`/content/stats?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`, {
    headers: { Authorization: `Bearer ${staff}` },
  });
  const body = await answer.json();
  if (!answer.ok) {
    status.className = 'error';
    status.textContent = `无法加载统计（${body?.error?.code ?? answer.status}）：${body?.error?.message ?? ''}`;
    return;
  }
  const report = body as Report;
  const yesterday = report.days.find((d) => d.day === beijingDay(-1));
  status.textContent = `${report.from} 至 ${report.to}：浏览 ${report.totals.views} 次，访客 ${report.totals.visitors} 人`
    + (yesterday ? `；昨日浏览 ${yesterday.views} 次` : '') + '。';
  render(report);
  document.body.dataset.loaded = '1';
}

function start(): void {
  const form = document.getElementById('range') as HTMLFormElement;
  const from = document.getElementById('from') as HTMLInputElement;
  const to = document.getElementById('to') as HTMLInputElement;
  const params = new URLSearchParams(location.search);
  from.value = params.get('from') ?? beijingDay(-13);
  to.value = params.get('to') ?? beijingDay(0);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void load(from.value, to.value);
  });
  void load(from.value, to.value);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
