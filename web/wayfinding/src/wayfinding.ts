// 院内导航 (phone-first): campus and level switch with a minimap, a 2.5D map of each level (extruded
// rooms on a canvas), locate-me from a kiosk's QR code (?kiosk=<id>) or a chosen start, search by text
// or voice, one-tap common places (就医服务 / 便民服务), route preview under a profile, simulated
// navigation (模拟导航: a first-person walk with pause, resume and speed) and real navigation that advances
// step by step; each step is spoken with the browser's speech synthesis when it is reached.
import { ApiError } from '../../pages/src/shared/api';
import { token } from '../../pages/src/shared/session';
import { announce, clear, frame, h } from '../../pages/src/shared/ui';
import './wayfinding.css';

type LonLat = [number, number];
interface Unit { id: string; name: string; category: string; closed: boolean; ring: LonLat[] }
interface Level { id: string; name: string; short_name: string; floor: string; ordinal: number; outdoor: boolean; building_id: string | null; building_name: string; units: Unit[] }
interface MapData { venue: { id: string; name: string }; origin: LonLat; buildings: { id: string; name: string }[]; levels: Level[]; kiosks: { id: string; name: string }[] }
interface Poi { id: string; name: string; category: string; category_name: string; group: string; level_id: string | null; at: LonLat | null }
interface Step { index: number; kind: string; text: string; distance_m: number; level_id: string; at: LonLat }
interface Route { length_m: number; vertical_s: number; eta_s: number; path: { level_id: string; coordinates: LonLat[] }[]; steps: Step[]; destination: { name: string }; origin: { name: string } }

const params = new URLSearchParams(location.search);
const HOSPITAL = params.get('hospital') || 'demo-hospital';
const PROFILES: [string, string][] = [['elevator_first', '电梯优先'], ['stairs_first', '楼梯优先'], ['accessible', '无障碍']];
const COMMON: [string, [string, string][]][] = [
  ['就医服务', [['kiosk', '自助机'], ['cashier', '收费窗口'], ['pharmacy', '取药窗口'], ['information', '咨询台']]],
  ['便民服务', [['toilet', '卫生间'], ['water', '饮水处'], ['shop', '便利店'], ['rental', '轮椅租借']]],
];
const COLORS: Record<string, string> = {
  walkway: '#e9eef3', lobby: '#dde9f7', footbridge: '#d7ecdf', elevator: '#f3d9a4', stairs: '#f1c3b5', escalator: '#f1c3b5',
  restroom: '#cfe3f5', pharmacy: '#d9f0d3', laboratory: '#efe0f6', room: '#ffffff', office: '#d8d8d8',
};

const { main } = frame('院内导航', { needsToken: false });
document.documentElement.classList.add('nav-page');

async function get<T>(path: string): Promise<T> {
  const response = await fetch(path, { headers: { Accept: 'application/json' } });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data?.error?.code || 'UNKNOWN', data?.error?.message || '操作没有成功，请稍后再试。');
  return data as T;
}

// -- state -------------------------------------------------------------------------------------------
let venueId = '';
let map: MapData | null = null;
let level: Level | null = null;
let start: { id: string; name: string } | null = null;
let dest: { id: string; name: string } | null = null;
let profile = 'elevator_first';
let route: Route | null = null;
const sim = { on: false, paused: false, speed: 1, t: 0, last: 0, spoken: new Set<number>(), step: -1, mode: 'sim' as 'sim' | 'real' };
let kx = 1; let ky = 1;

// -- layout ------------------------------------------------------------------------------------------
const campus = h('select', { id: 'campus', 'aria-label': '院区' });
const levels = h('div', { class: 'levels', role: 'group', 'aria-label': '楼层' });
const minimap = h('canvas', { id: 'minimap', width: 96, height: 64, role: 'img', 'aria-label': '院区缩略图' });
const canvas = h('canvas', { id: 'map', role: 'img', 'aria-label': '楼层地图' });
const where = h('p', { id: 'where', class: 'small muted' }, '请扫描导航机上的二维码定位，或选择起点。');
const query = h('input', { id: 'q', type: 'search', placeholder: '搜索科室、诊室、设施，如 B超', autocomplete: 'off', 'aria-label': '搜索地点' });
const voice = h('button', { type: 'button', id: 'voice', class: 'secondary' }, '语音');
const hits = h('ul', { id: 'hits', class: 'hits' });
const picker = h('div', { class: 'row', role: 'group', 'aria-label': '路线偏好' });
const summary = h('div', { id: 'summary', 'aria-live': 'polite' });
const stepsList = h('ol', { id: 'steps', class: 'steps' });
const controls = h('div', { id: 'controls', class: 'row', hidden: true });
const error = h('p', { class: 'error', hidden: true, role: 'alert' });
const visit = h('section', { id: 'visit', 'aria-labelledby': 'visit-h', hidden: true });

const playButton = h('button', { type: 'button', id: 'play' }, '模拟导航');
const pauseButton = h('button', { type: 'button', id: 'pause', class: 'secondary' }, '暂停');
const speedButton = h('button', { type: 'button', id: 'speed', class: 'secondary' }, '1倍速');
const realButton = h('button', { type: 'button', id: 'real', class: 'secondary' }, '实景导航');
const nextButton = h('button', { type: 'button', id: 'next', class: 'secondary', hidden: true }, '下一步');
controls.append(playButton, pauseButton, speedButton, realButton, nextButton);

for (const [value, label] of PROFILES) {
  const b = h('button', { type: 'button', class: 'chip', 'data-profile': value, 'aria-pressed': String(value === profile) }, label);
  b.addEventListener('click', () => { profile = value; for (const c of picker.children) c.setAttribute('aria-pressed', String((c as HTMLElement).dataset.profile === value)); void plan(); });
  picker.append(b);
}

const common = h('section', { 'aria-label': '常用地点', class: 'common' },
  COMMON.map(([group, items]) => h('div', { class: 'group' }, h('h2', {}, group),
    h('div', { class: 'row' }, items.map(([category, label]) => h('button', { type: 'button', class: 'chip', 'data-category': category, onclick: () => { dest = { id: `nearest:${category}`, name: `最近的${label}` }; void plan(); } }, label))))));

main.append(
  h('div', { class: 'row spread' }, h('label', { for: 'campus', class: 'small' }, '院区'), campus, minimap),
  levels,
  canvas,
  where,
  visit,
  h('div', { class: 'row search' }, query, voice),
  hits,
  common,
  picker,
  error,
  summary,
  controls,
  stepsList,
);

function fail(e: unknown): void {
  error.hidden = false;
  error.textContent = e instanceof ApiError ? e.message : '操作没有成功，请稍后再试。';
}

// -- drawing -----------------------------------------------------------------------------------------
function project(p: LonLat, w: number, hgt: number, scale: number, cx: number, cy: number, rot: number): [number, number] {
  if (!map) return [0, 0];
  const x = (p[0] - map.origin[0]) * kx - cx;
  const y = (p[1] - map.origin[1]) * ky - cy;
  const rx = x * Math.cos(rot) - y * Math.sin(rot);
  const ry = x * Math.sin(rot) + y * Math.cos(rot);
  // 2.5D: north tilted away from the viewer (y squashed), walls drawn upwards
  return [w / 2 + rx * scale, hgt * 0.55 - ry * scale * 0.6];
}

function bounds(lv: Level): [number, number, number, number] {
  let minx = Infinity; let miny = Infinity; let maxx = -Infinity; let maxy = -Infinity;
  for (const u of lv.units) for (const p of u.ring) {
    const x = (p[0] - map!.origin[0]) * kx; const y = (p[1] - map!.origin[1]) * ky;
    minx = Math.min(minx, x); maxx = Math.max(maxx, x); miny = Math.min(miny, y); maxy = Math.max(maxy, y);
  }
  return [minx, miny, maxx, maxy];
}

function walkerAt(): { p: LonLat; level: string; heading: number } | null {
  if (!route) return null;
  let left = sim.t;
  for (const part of route.path) {
    for (let i = 1; i < part.coordinates.length; i++) {
      const a = part.coordinates[i - 1]; const b = part.coordinates[i];
      const d = Math.hypot((b[0] - a[0]) * kx, (b[1] - a[1]) * ky);
      if (left <= d) {
        const f = d ? left / d : 0;
        return { p: [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f], level: part.level_id, heading: Math.atan2((b[1] - a[1]) * ky, (b[0] - a[0]) * kx) };
      }
      left -= d;
    }
  }
  const last = route.path[route.path.length - 1];
  return { p: last.coordinates[last.coordinates.length - 1], level: last.level_id, heading: 0 };
}

function totalLength(): number {
  if (!route) return 0;
  let sum = 0;
  for (const part of route.path) for (let i = 1; i < part.coordinates.length; i++) {
    const a = part.coordinates[i - 1]; const b = part.coordinates[i];
    sum += Math.hypot((b[0] - a[0]) * kx, (b[1] - a[1]) * ky);
  }
  return sum;
}

function draw(): void {
  if (!map || !level) return;
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 343; const hgt = canvas.clientHeight || 300;
  canvas.width = Math.round(w * ratio); canvas.height = Math.round(hgt * ratio);
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.fillStyle = '#f7f9fb'; ctx.fillRect(0, 0, w, hgt);
  const [minx, miny, maxx, maxy] = bounds(level);
  let scale = Math.min(w / (maxx - minx + 10), hgt / ((maxy - miny) * 0.6 + 40));
  let cx = (minx + maxx) / 2; let cy = (miny + maxy) / 2; let rot = 0;
  const walker = sim.on ? walkerAt() : null;
  if (walker) { // first person: follow the walker, heading up, closer
    cx = (walker.p[0] - map.origin[0]) * kx; cy = (walker.p[1] - map.origin[1]) * ky;
    rot = Math.PI / 2 - walker.heading; scale = Math.max(scale, 6);
  }
  const wall = Math.max(4, scale * 2.5);
  let drawn = 0;
  const units = [...level.units].sort((a, b) => (b.ring[0][1] - a.ring[0][1]));
  for (const u of units) {
    const pts = u.ring.map((p) => project(p, w, hgt, scale, cx, cy, rot));
    const extrude = !['walkway', 'footbridge'].includes(u.category);
    ctx.beginPath();
    pts.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    ctx.closePath();
    ctx.fillStyle = u.closed ? '#c9c9c9' : (COLORS[u.category] || '#ffffff');
    ctx.fill();
    ctx.strokeStyle = '#9aa7b4'; ctx.lineWidth = 1; ctx.stroke();
    if (extrude) { // walls: the outline lifted, joined to the floor
      ctx.beginPath();
      pts.forEach(([x, y], i) => (i ? ctx.lineTo(x, y - wall) : ctx.moveTo(x, y - wall)));
      ctx.closePath();
      ctx.strokeStyle = 'rgba(80,100,120,.55)'; ctx.stroke();
      for (const [x, y] of pts) { ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(x, y - wall); ctx.stroke(); }
    }
    if (u.name && scale > 2.2 && u.category !== 'walkway') {
      const c = pts.reduce((s, p) => [s[0] + p[0] / pts.length, s[1] + p[1] / pts.length], [0, 0]);
      ctx.fillStyle = '#1a1a1a'; ctx.font = '10px sans-serif'; ctx.textAlign = 'center';
      ctx.fillText(u.name.slice(0, 6), c[0], c[1] - wall / 2);
    }
    drawn++;
  }
  let routePoints = 0;
  if (route) {
    ctx.strokeStyle = '#0b5cad'; ctx.lineWidth = 4; ctx.lineJoin = 'round';
    for (const part of route.path.filter((p) => p.level_id === level!.id)) {
      ctx.beginPath();
      part.coordinates.forEach((p, i) => { const [x, y] = project(p, w, hgt, scale, cx, cy, rot); if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y); });
      ctx.stroke();
      routePoints += part.coordinates.length;
    }
  }
  if (walker && walker.level === level.id) {
    const [x, y] = project(walker.p, w, hgt, scale, cx, cy, rot);
    ctx.fillStyle = '#d9480f'; ctx.beginPath(); ctx.arc(x, y, 7, 0, Math.PI * 2); ctx.fill();
    ctx.beginPath(); ctx.moveTo(x, y - 14); ctx.lineTo(x - 5, y - 6); ctx.lineTo(x + 5, y - 6); ctx.closePath(); ctx.fill();
  }
  canvas.dataset.units = String(drawn);
  canvas.dataset.routePoints = String(routePoints);
  canvas.dataset.level = level.id;
  drawMinimap();
}

function drawMinimap(): void {
  if (!map || !level) return;
  const ctx = minimap.getContext('2d');
  if (!ctx) return;
  ctx.clearRect(0, 0, 96, 64);
  const all = map.levels.filter((l) => l.ordinal === 0 || l.outdoor);
  let minx = Infinity; let miny = Infinity; let maxx = -Infinity; let maxy = -Infinity;
  for (const l of all) { const b = bounds(l); minx = Math.min(minx, b[0]); miny = Math.min(miny, b[1]); maxx = Math.max(maxx, b[2]); maxy = Math.max(maxy, b[3]); }
  const s = Math.min(90 / (maxx - minx), 58 / (maxy - miny));
  for (const l of all) {
    const [a, b, c, d] = bounds(l);
    ctx.fillStyle = l.building_id && l.building_id === level.building_id ? '#0b5cad' : (l.outdoor ? '#e6efe6' : '#b8c4d0');
    ctx.fillRect(3 + (a - minx) * s, 61 - (d - miny) * s, (c - a) * s, (d - b) * s);
  }
}

// -- levels and campus -------------------------------------------------------------------------------
function showLevel(lv: Level): void {
  level = lv;
  for (const b of levels.querySelectorAll('button')) b.setAttribute('aria-pressed', String((b as HTMLElement).dataset.level === lv.id));
  draw();
}

function renderLevels(): void {
  if (!map) return;
  const buildings = new Map<string, Level[]>();
  for (const lv of map.levels) {
    const key = lv.building_name || '室外';
    if (!buildings.has(key)) buildings.set(key, []);
    buildings.get(key)!.push(lv);
  }
  clear(levels, [...buildings.entries()].map(([name, lvs]) => h('div', { class: 'building' }, h('span', { class: 'small muted' }, name),
    [...lvs].sort((a, b) => b.ordinal - a.ordinal).map((lv) => h('button', { type: 'button', class: 'level', 'data-level': lv.id, 'aria-pressed': 'false', 'aria-label': `${lv.outdoor ? '室外' : lv.short_name} ${name}${lv.floor}`, onclick: () => showLevel(lv) }, lv.outdoor ? '室外' : lv.short_name)))));
}

async function loadVenue(id: string): Promise<void> {
  venueId = id;
  const answer = await get<{ map: MapData }>(`/wayfinding/venues/${encodeURIComponent(id)}/map`);
  map = answer.map;
  const lat = map.origin[1];
  kx = 111320 * Math.cos((lat * Math.PI) / 180); ky = 110540;
  renderLevels();
  const kiosk = params.get('kiosk');
  const found = kiosk ? map.kiosks.find((k) => k.id === kiosk) : null;
  if (found) { start = { id: found.id, name: found.name }; where.textContent = `当前位置：${found.name}（已扫码定位）`; }
  const ground = map.levels.find((l) => l.outdoor) || map.levels.find((l) => l.ordinal === 0) || map.levels[0];
  showLevel(ground);
}

async function init(): Promise<void> {
  try {
    const { venues } = await get<{ venues: { venue_id: string; name: string; published_version: number | null }[] }>(`/wayfinding/venues?hospital=${encodeURIComponent(HOSPITAL)}`);
    const live = venues.filter((v) => v.published_version);
    clear(campus, live.map((v) => h('option', { value: v.venue_id }, v.name)));
    campus.addEventListener('change', () => { route = null; void loadVenue(campus.value); });
    if (!live.length) { where.textContent = '该医院还没有发布导航地图。'; return; }
    const wanted = params.get('venue');
    const chosen = live.find((v) => v.venue_id === wanted) || live[0];
    campus.value = chosen.venue_id;
    await loadVenue(chosen.venue_id);
    await outpatientDay();
  } catch (e) {
    fail(e);
  } finally {
    document.body.dataset.ready = '1';
  }
}

// -- the outpatient day (门诊场景应用): the signed-in patient's visit from guidance (GET /guide/dashboard and
// /guide/visits/{id}, same origin), each place with a route: the next to-do first, then the day so far
interface Todo { title: string; place_poi: string | null; place_name: string | null }
async function placeOf(code: string): Promise<{ id: string; name: string } | null> {
  const answer = await get<{ hits: { score: number; poi: Poi }[] }>(`/wayfinding/search?venue=${encodeURIComponent(venueId)}&q=${encodeURIComponent(code)}&limit=1`);
  const hit = answer.hits[0];
  return hit && hit.score >= 100 ? { id: hit.poi.id, name: hit.poi.name } : null;
}

function goButton(label: string, code: string | null): HTMLElement | null {
  if (!code) return null;
  return h('button', { type: 'button', class: 'chip', 'data-place': code, onclick: async () => {
    try {
      const place = await placeOf(code);
      if (!place) { fail(new ApiError(404, 'NO_SUCH_PLACE', '导航地图中还没有这个地点，请咨询服务台。')); return; }
      dest = place; await plan();
    } catch (e) { fail(e); }
  } }, label);
}

async function outpatientDay(): Promise<void> {
  const t = token();
  if (!t) return;
  const headers = { Accept: 'application/json', Authorization: `Bearer ${t}` };
  const response = await fetch('/guide/dashboard', { headers });
  if (!response.ok) return; // not a patient, or signed out: the page works without it
  const dashboard = await response.json();
  const card = dashboard.cards?.[0];
  if (!card) return;
  const next: Todo = card.next_todo || card;
  const board = await fetch(`/guide/visits/${encodeURIComponent(card.visit_id)}`, { headers }).then((r) => (r.ok ? r.json() : null));
  const history: { label: string; place_poi: string | null; place_name: string | null }[] = board?.history || [];
  clear(visit,
    h('h2', { id: 'visit-h' }, '今日就诊'),
    h('p', { class: 'card', id: 'next-todo' }, h('strong', {}, `下一项：${next.title}`), next.place_name ? ` · ${next.place_name}` : '', ' ', goButton('去下一项', next.place_poi)),
    h('ol', { class: 'timeline', id: 'day' }, history.map((s) => h('li', {}, s.label, s.place_name ? h('span', { class: 'small muted' }, ` ${s.place_name}`) : '', ' ', goButton('导航', s.place_poi))),
      h('li', { class: 'current' }, next.title, next.place_name ? h('span', { class: 'small muted' }, ` ${next.place_name}`) : '')));
  visit.hidden = false;
}

// -- search ------------------------------------------------------------------------------------------
let searchTimer = 0;
async function search(text: string): Promise<void> {
  if (!venueId || !text.trim()) { clear(hits); return; }
  try {
    const answer = await get<{ hits: { poi: Poi }[] }>(`/wayfinding/search?venue=${encodeURIComponent(venueId)}&q=${encodeURIComponent(text.trim())}&limit=8`);
    clear(hits, answer.hits.length ? answer.hits.map(({ poi }) => h('li', {},
      h('span', { class: 'grow' }, poi.name, h('span', { class: 'small muted' }, ` ${poi.category_name}`)),
      h('button', { type: 'button', class: 'chip', 'data-go': poi.id, onclick: () => { dest = { id: poi.id, name: poi.name }; clear(hits); void plan(); } }, '去这里'),
      h('button', { type: 'button', class: 'chip secondary', 'data-from': poi.id, onclick: () => { start = { id: poi.id, name: poi.name }; where.textContent = `起点：${poi.name}`; clear(hits); void plan(); } }, '设为起点')))
      : [h('li', { class: 'muted' }, '没有找到，换个说法试试，如“抽血”“B超”。')]);
    announce(`找到 ${answer.hits.length} 个地点`);
  } catch (e) { fail(e); }
}
query.addEventListener('input', () => { window.clearTimeout(searchTimer); searchTimer = window.setTimeout(() => void search(query.value), 200); });

const Recognition = (window as any).SpeechRecognition || (window as any).webkitSpeechRecognition;
if (!Recognition) { voice.hidden = true; } else {
  voice.addEventListener('click', () => {
    const r = new Recognition(); r.lang = 'zh-CN'; r.interimResults = false;
    r.onresult = (e: any) => { query.value = e.results[0][0].transcript; void search(query.value); };
    r.onerror = () => announce('没有听清，请用文字搜索。');
    r.start();
  });
}

// -- routes ------------------------------------------------------------------------------------------
async function plan(): Promise<void> {
  error.hidden = true;
  if (!dest) return;
  if (!start) { where.textContent = '请先扫码定位或在搜索结果中“设为起点”。'; return; }
  stop();
  try {
    const q = new URLSearchParams({ venue: venueId, from: start.id, to: dest.id, profile });
    route = await get<Route>(`/wayfinding/route?${q}`);
  } catch (e) { route = null; clear(stepsList); clear(summary); controls.hidden = true; fail(e); draw(); return; }
  const minutes = Math.max(1, Math.round(route.eta_s / 60));
  clear(summary, h('p', { class: 'card' }, h('strong', {}, `${route.origin.name} → ${route.destination.name}`), h('br', {}),
    `步行约 ${Math.round(route.length_m)} 米，预计 ${minutes} 分钟`));
  clear(stepsList, route.steps.map((s) => h('li', { 'data-step': s.index }, s.text)));
  controls.hidden = false;
  const first = map!.levels.find((l) => l.id === route!.path[0].level_id);
  if (first) showLevel(first); else draw();
  announce(`路线已规划：${route.steps[0]?.text || ''}`);
}

function speak(step: Step): void {
  const item = stepsList.querySelector(`[data-step="${step.index}"]`);
  for (const li of stepsList.querySelectorAll('li')) li.classList.toggle('current', li === item);
  sim.step = step.index;
  stepsList.dataset.spoken = String(sim.spoken.size);
  stepsList.dataset.current = String(step.index);
  announce(step.text);
  if ('speechSynthesis' in window) {
    const u = new SpeechSynthesisUtterance(step.text); u.lang = 'zh-CN';
    window.speechSynthesis.cancel(); window.speechSynthesis.speak(u);
  }
}

function distanceTo(step: Step): number {
  if (!route) return Infinity;
  // distance along the path from the start to the point nearest the step's place
  let along = 0; let best = Infinity; let at = 0;
  for (const part of route.path) {
    for (let i = 0; i < part.coordinates.length; i++) {
      const c = part.coordinates[i];
      if (i) { const p = part.coordinates[i - 1]; along += Math.hypot((c[0] - p[0]) * kx, (c[1] - p[1]) * ky); }
      if (part.level_id !== step.level_id) continue;
      const d = Math.hypot((c[0] - step.at[0]) * kx, (c[1] - step.at[1]) * ky);
      if (d < best - 0.01) { best = d; at = along; }
    }
  }
  return at;
}

let stepMarks: number[] = [];
function tick(now: number): void {
  if (!sim.on || !route) return;
  if (!sim.paused) {
    const dt = sim.last ? (now - sim.last) / 1000 : 0;
    sim.t = Math.min(totalLength(), sim.t + dt * 1.2 * 4 * sim.speed); // 4x real walking pace at 1倍速
    route.steps.forEach((s, i) => { if (!sim.spoken.has(i) && sim.t + 0.5 >= stepMarks[i]) { sim.spoken.add(i); speak(s); } });
    const walker = walkerAt();
    if (walker && level && walker.level !== level.id) { const lv = map!.levels.find((l) => l.id === walker.level); if (lv) showLevel(lv); }
    canvas.dataset.progress = (sim.t / Math.max(1, totalLength())).toFixed(3);
    draw();
    if (sim.t >= totalLength()) { sim.on = false; playButton.textContent = '重新模拟'; announce('已到达目的地'); return; }
  }
  sim.last = now;
  requestAnimationFrame(tick);
}

function stop(): void { sim.on = false; sim.t = 0; sim.last = 0; sim.spoken.clear(); sim.paused = false; pauseButton.textContent = '暂停'; nextButton.hidden = true; }

playButton.addEventListener('click', () => {
  if (!route) return;
  stop();
  sim.mode = 'sim'; sim.on = true;
  stepMarks = route.steps.map((s) => distanceTo(s));
  stepMarks[stepMarks.length - 1] = totalLength();
  playButton.textContent = '模拟中';
  canvas.dataset.progress = '0';
  requestAnimationFrame(tick);
});
pauseButton.addEventListener('click', () => {
  if (!sim.on) return;
  sim.paused = !sim.paused; sim.last = 0;
  pauseButton.textContent = sim.paused ? '继续' : '暂停';
  canvas.dataset.paused = sim.paused ? '1' : '0';
  announce(sim.paused ? '已暂停' : '继续导航');
});
speedButton.addEventListener('click', () => {
  sim.speed = sim.speed >= 4 ? 1 : sim.speed * 2;
  speedButton.textContent = `${sim.speed}倍速`;
  canvas.dataset.speed = String(sim.speed);
});
realButton.addEventListener('click', () => {
  if (!route) return;
  stop(); sim.mode = 'real'; nextButton.hidden = false;
  sim.step = 0; speak(route.steps[0]);
});
nextButton.addEventListener('click', () => {
  if (!route) return;
  const next = Math.min(route.steps.length - 1, sim.step + 1);
  const step = route.steps[next];
  const lv = map!.levels.find((l) => l.id === step.level_id);
  if (lv && lv.id !== level?.id) showLevel(lv);
  speak(step);
  if (next === route.steps.length - 1) nextButton.hidden = true;
});

window.addEventListener('resize', () => draw());
void init();
