// 导航管理 (staff at a desk, nav-admin): the campus's POIs with enable/disable, tags and aliases, the CSV
// export, and the operations view (运营管理: rooms with their device and business overlays, alerts).
import { api } from '../../pages/src/shared/api';
import { claims } from '../../pages/src/shared/session';
import { announce, clear, frame, h, showError } from '../../pages/src/shared/ui';
import './wayfinding.css';

interface Poi { id: string; name: string; category_name: string; group: string; enabled: boolean; tags: string[]; aliases: string[] }

const { main } = frame('导航管理', { wide: true });
const hospital = String(claims().hospital || '');
const campus = h('select', { id: 'campus', 'aria-label': '院区' });
const filter = h('input', { type: 'search', id: 'filter', placeholder: '按名称筛选', 'aria-label': '按名称筛选' });
const table = h('tbody', { id: 'pois' });
const ops = h('section', { class: 'ops', 'aria-labelledby': 'ops-h' });
const error = h('p', { class: 'error', hidden: true, role: 'alert' });
let venue = '';
let pois: Poi[] = [];

main.append(
  h('div', { class: 'row' }, h('label', { for: 'campus' }, '院区'), campus, filter),
  error,
  h('h2', {}, '地点管理'),
  h('table', { class: 'ops' }, h('thead', {}, h('tr', {}, h('th', {}, '名称'), h('th', {}, '类别'), h('th', {}, '别名'), h('th', {}, '标签'), h('th', {}, '状态'))), table),
  h('h2', { id: 'ops-h' }, '运营视图'),
  ops,
);

function render(): void {
  const f = filter.value.trim();
  clear(table, pois.filter((p) => !f || p.name.includes(f)).map((p) => {
    const aliases = h('input', { value: p.aliases.join('，'), 'aria-label': `${p.name}的别名`, 'data-aliases': p.id });
    aliases.addEventListener('change', () => void patch(p, { aliases: aliases.value.split(/[,，]/).map((s) => s.trim()).filter(Boolean) }));
    const toggle = h('button', { type: 'button', class: p.enabled ? 'secondary' : '', 'data-toggle': p.id, 'aria-pressed': String(!p.enabled) }, p.enabled ? '停用' : '启用');
    toggle.addEventListener('click', () => void patch(p, { enabled: !p.enabled }));
    return h('tr', { 'data-poi': p.id }, h('td', {}, p.name), h('td', {}, `${p.group} · ${p.category_name}`), h('td', {}, aliases), h('td', {}, p.tags.join('、') || '—'),
      h('td', {}, h('span', { class: p.enabled ? 'badge ok' : 'badge err' }, p.enabled ? '启用中' : '已停用'), ' ', toggle));
  }));
}

async function patch(p: Poi, change: Partial<Poi>): Promise<void> {
  error.hidden = true;
  try {
    const updated = await api<Poi>('PATCH', `/wayfinding/venues/${encodeURIComponent(venue)}/pois/${encodeURIComponent(p.id)}`, change);
    pois = pois.map((x) => (x.id === p.id ? updated : x));
    render();
    announce(`${updated.name}：${updated.enabled ? '已启用' : '已停用'}`);
  } catch (e) { showError(error, e); }
}

async function load(): Promise<void> {
  try {
    const { pois: list } = await api<{ pois: Poi[] }>('GET', `/wayfinding/venues/${encodeURIComponent(venue)}/pois`);
    pois = list.sort((a, b) => a.name.localeCompare(b.name, 'zh'));
    render();
    const view = await api<any>('GET', `/wayfinding/venues/${encodeURIComponent(venue)}/operations`);
    clear(ops,
      h('p', {}, `地点 ${view.counts.pois} 个，已停用 ${view.counts.disabled} 个，实时数据 ${view.counts.overlays} 条`),
      view.alerts.length ? h('ul', { class: 'cards', id: 'alerts' }, view.alerts.map((a: any) => h('li', { class: 'card notice' }, `${a.name}：设备状态 ${a.status === 'broken' ? '故障' : a.status}`))) : h('p', { class: 'muted' }, '暂无告警'),
      view.buildings.map((b: any) => h('details', {}, h('summary', {}, b.name),
        b.levels.map((lv: any) => h('div', {}, h('h3', {}, lv.name),
          h('ul', {}, lv.rooms.filter((r: any) => r.overlays.length || r.pois.length).map((r: any) => h('li', {}, r.name,
            r.overlays.map((o: any) => h('span', { class: 'badge warn' }, o.kind === 'queue_length' ? ` 排队 ${o.value} 人` : ` ${o.status || o.value}`))))))))));
  } catch (e) { showError(error, e); } finally { document.body.dataset.ready = '1'; }
}

filter.addEventListener('input', render);
campus.addEventListener('change', () => { venue = campus.value; void load(); });
(async () => {
  try {
    const { venues } = await api<{ venues: { venue_id: string; name: string }[] }>('GET', `/wayfinding/venues?hospital=${encodeURIComponent(hospital)}`);
    clear(campus, venues.map((v) => h('option', { value: v.venue_id }, v.name)));
    if (!venues.length) { document.body.dataset.ready = '1'; return; }
    venue = venues[0].venue_id;
    await load();
  } catch (e) { showError(error, e); document.body.dataset.ready = '1'; }
})();
