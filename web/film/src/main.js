// 云胶片 viewer: a phone-first stack viewer on Cornerstone3D. The page (rendered by FilmViewerPageFunction)
// inlines the manifest as window.FILM and paints the first image itself; this bundle takes over with the
// full toolset. Frames are read straight from object storage through presigned URLs (wadors: loader,
// raw little-endian pixels, gzip) with the series' DICOM JSON registered as their metadata.
import {
  Enums as csEnums,
  RenderingEngine,
  eventTarget,
  imageLoader,
  init as csInit,
  metaData,
  getRenderingCapabilities,
} from '@cornerstonejs/core';
import {
  AngleTool,
  EllipticalROITool,
  Enums as toolEnums,
  LengthTool,
  MagnifyTool,
  PanTool,
  RectangleROITool,
  StackScrollTool,
  ToolGroupManager,
  WindowLevelTool,
  ZoomTool,
  addTool,
  annotation,
  init as toolsInit,
  utilities as toolUtils,
} from '@cornerstonejs/tools';
import { init as loaderInit, wadors } from '@cornerstonejs/dicom-image-loader';

const FILM = window.FILM;
FILM.mark('bundle_evaluated');
const $ = (id) => document.getElementById(id);
const MB = toolEnums.MouseBindings;
const PRESETS = { lung: [-600, 1500], bone: [400, 1800], soft: [40, 400], brain: [40, 80] };
const TOOLS = {
  WindowLevel: WindowLevelTool, Zoom: ZoomTool, Pan: PanTool, StackScroll: StackScrollTool,
  Magnify: MagnifyTool, Length: LengthTool, Angle: AngleTool, RectangleROI: RectangleROITool,
  EllipticalROI: EllipticalROITool,
};
const state = { manifest: FILM.manifest, seriesIndex: 0, tool: 'WindowLevel', playing: false, annotations: true };
let viewport;
let toolGroup;

function toast(text) {
  const t = $('toast');
  t.textContent = text;
  t.style.display = 'block';
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.style.display = 'none'; }, 2200);
}

function softwareGL() {
  // Software WebGL (SwiftShader, llvmpipe) is slower than Cornerstone's CPU path; ?cpu=1 forces it too.
  if (/[?&]cpu=1/.test(location.search)) return true;
  try {
    const gl = document.createElement('canvas').getContext('webgl2');
    if (!gl) return true;
    const info = gl.getExtension('WEBGL_debug_renderer_info');
    const name = info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : '';
    return /swiftshader|llvmpipe|software/i.test(name);
  } catch (e) {
    return true;
  }
}

function fmtDate(d) {
  return d && d.length === 8 ? `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6)}` : (d || '日期不详');
}

function study() { return state.manifest.study; }
function series() { return study() ? study().series[state.seriesIndex] : null; }

function renderHeader() {
  const m = state.manifest;
  const s = study();
  $('patient').textContent = m.patient && m.patient.name ? `${m.patient.name} 的云胶片` : '云胶片';
  $('studyline').textContent = s
    ? `${fmtDate(s.date)} ${s.institution || s.hospital || ''} ${(s.modalities || []).join('/')}`
    : '';
  const list = $('studies');
  list.innerHTML = '';
  for (const it of m.studies) {
    const div = document.createElement('div');
    div.className = 'study' + (s && it.study_uid === s.study_uid ? ' on' : '');
    div.innerHTML = '<div><b></b></div><div class="d"></div>';
    div.querySelector('b').textContent = `${fmtDate(it.date)}  ${(it.modalities || []).join('/')}  ${it.description || ''}`;
    div.querySelector('.d').textContent =
      `${it.institution || it.hospital || ''} · ${it.series_count} 个序列 · ${it.instance_count} 幅影像${it.has_report ? ' · 有报告' : ''}`;
    div.onclick = () => switchStudy(it.study_uid);
    list.appendChild(div);
  }
  const exp = document.createElement('p');
  exp.className = 'd';
  exp.textContent = `链接有效期至 ${new Date(m.link.expires_at).toLocaleString('zh-CN')}`;
  list.appendChild(exp);
}

function renderSeriesStrip() {
  const strip = $('series');
  strip.innerHTML = '';
  (study() ? study().series : []).forEach((se, i) => {
    const div = document.createElement('div');
    div.className = 's' + (i === state.seriesIndex ? ' on' : '');
    div.innerHTML = '<img alt=""><div></div>';
    div.querySelector('img').src = se.thumbnail;
    div.querySelector('div').textContent = `${se.modality} ${se.description || ''} (${se.frame_count})`;
    div.onclick = () => showSeries(i);
    strip.appendChild(div);
  });
}

async function refreshManifest(studyUid) {
  const q = studyUid ? `?study=${encodeURIComponent(studyUid)}` : '';
  const res = await fetch(`${location.pathname.replace(/\/$/, '')}/manifest${q}`, { cache: 'no-store' });
  if (!res.ok) throw new Error((await res.json()).error.code);
  state.manifest = await res.json();
}

async function ensureFreshUrls() {
  // presigned URLs live ten minutes: renew them a minute before they lapse
  if (Date.parse(state.manifest.urls_expire_at) - Date.now() < 60000) {
    await refreshManifest(study() && study().study_uid);
  }
}

async function switchStudy(uid) {
  document.querySelectorAll('.panel').forEach((p) => p.classList.remove('open'));
  await refreshManifest(uid);
  state.seriesIndex = 0;
  renderHeader();
  await showSeries(0);
}

// Frames the page already fetched (FILM.frames, see viewer.html) go to the wadors loader through its
// compressed-frame registry: it asks the metadata providers for 'compressedFrameData' before the network.
const TRANSFER_SYNTAX_OF_FRAMES = '1.2.840.10008.1.2.1'; // explicit little endian, raw: see layout.py
const handedOver = new Map(); // imageId -> ArrayBuffer, taken once
metaData.addProvider((type, imageId) => {
  if (type !== 'compressedFrameData' || !handedOver.has(imageId)) return undefined;
  const buf = handedOver.get(imageId);
  handedOver.delete(imageId);
  FILM.framesHandedOver = (FILM.framesHandedOver || 0) + 1;
  return { transferSyntaxUid: TRANSFER_SYNTAX_OF_FRAMES, frameOfInterest: 0, frameNumber: 1, pixelData: new Uint8Array(buf) };
}, 10000);

async function takePrefetched(id) {
  const url = id.substring('wadors:'.length);
  const pending = FILM.frames && FILM.frames[url];
  if (!pending) return;
  delete FILM.frames[url];
  const buf = await pending;
  if (buf) handedOver.set(id, buf);
}

async function imageIdsFor(se) {
  const res = await fetch(se.metadata);
  const instances = await res.json();
  const bySop = new Map(instances.map((m) => [m['00080018'].Value[0], m]));
  return se.frames.map((url, k) => {
    const [sop] = se.instances[k];
    const id = `wadors:${url}`;
    wadors.metaDataManager.add(id, bySop.get(sop));
    return id;
  });
}

async function showSeries(i) {
  await ensureFreshUrls();
  stopCine();
  state.seriesIndex = i;
  renderSeriesStrip();
  const se = series();
  if (!se) return;
  $('loading').style.display = 'block';
  $('loading').textContent = '正在加载…';
  const ids = await imageIdsFor(se);
  const mid = Math.floor(ids.length / 2);
  await takePrefetched(ids[mid]);
  await viewport.setStack(ids, mid);
  viewport.render();
  $('slice').max = String(ids.length - 1);
  $('slice').value = String(mid);
  updateOverlay();
  document.querySelector('#presets').style.display = se.render && se.render.samples === 1 ? 'flex' : 'none';
  const started = performance.now();
  let done = 0;
  // load the rest in the background, middle outwards, so scrolling and cine are smooth
  const order = ids.map((id, k) => [Math.abs(k - mid), id]).sort((a, b) => a[0] - b[0]).map((x) => x[1]);
  await Promise.all(order.map((id) => takePrefetched(id).then(() => imageLoader.loadAndCacheImage(id)).then(() => {
    done += 1;
    if (done % 5 === 0 || done === ids.length) $('loading').textContent = `已加载 ${done}/${ids.length}`;
  })));
  FILM.mark('series_loaded');
  FILM.seriesLoadMs = Math.round(performance.now() - started);
  setTimeout(() => { $('loading').style.display = 'none'; }, 800);
}

function updateOverlay() {
  const se = series();
  if (!se || !viewport) return;
  const idx = viewport.getCurrentImageIdIndex();
  $('slicepos').textContent = `${idx + 1}/${se.frame_count}`;
  $('slice').value = String(idx);
  $('overlay').textContent = `${se.modality} ${se.description || ''}`;
  const voi = viewport.getProperties().voiRange;
  if (voi && se.render && se.render.samples === 1) {
    const ww = voi.upper - voi.lower;
    $('overlay2').textContent = `窗宽 ${Math.round(ww)} 窗位 ${Math.round(voi.lower + ww / 2)}`;
  } else {
    $('overlay2').textContent = '';
  }
}

function setTool(name) {
  const prev = state.tool;
  if (prev && prev !== name) toolGroup.setToolPassive(TOOLS[prev].toolName);
  toolGroup.setToolActive(TOOLS[name].toolName, { bindings: [{ mouseButton: MB.Primary }] });
  state.tool = name;
  document.querySelectorAll('[data-tool]').forEach((b) => b.classList.toggle('on', b.dataset.tool === name));
}

function stopCine() {
  if (state.playing) {
    toolUtils.cine.stopClip($('viewport'));
    state.playing = false;
    $('cine').textContent = '播放';
  }
}

function wireUi() {
  document.querySelectorAll('[data-tool]').forEach((b) => { b.onclick = () => setTool(b.dataset.tool); });
  document.querySelectorAll('[data-panel]').forEach((b) => {
    b.onclick = () => { $(`panel-${b.dataset.panel}`).classList.add('open'); if (b.dataset.panel === 'report') loadReport(); };
  });
  document.querySelectorAll('.panel .close').forEach((b) => { b.onclick = () => b.parentElement.classList.remove('open'); });
  document.querySelectorAll('[data-preset]').forEach((b) => {
    b.onclick = () => {
      const [c, w] = PRESETS[b.dataset.preset];
      viewport.setProperties({ voiRange: { lower: c - w / 2, upper: c + w / 2 } });
      viewport.render();
      updateOverlay();
    };
  });
  $('reset').onclick = () => { viewport.resetCamera(); viewport.resetProperties(); viewport.render(); updateOverlay(); };
  $('annotations').onclick = () => {
    state.annotations = !state.annotations;
    $('annotations').classList.toggle('on', state.annotations);
    if (state.annotations) annotation.visibility.showAllAnnotations();
    else for (const a of annotation.state.getAllAnnotations()) annotation.visibility.setAnnotationVisibility(a.annotationUID, false);
    viewport.render();
  };
  $('slice').oninput = (e) => { viewport.setImageIdIndex(Number(e.target.value)); };
  $('cine').onclick = () => {
    if (state.playing) { stopCine(); return; }
    const se = series();
    const fps = se && se.frame_time_ms ? Math.min(60, 1000 / se.frame_time_ms) : 12;
    toolUtils.cine.playClip($('viewport'), { framesPerSecond: fps, loop: true });
    state.playing = true;
    $('cine').textContent = '暂停';
  };
  $('share-make').onclick = async () => {
    const res = await fetch(`${location.pathname.replace(/\/$/, '')}/share`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ expires_in: 86400 }),
    });
    const body = await res.json();
    if (!res.ok) { toast(`分享失败：${body.error.code}`); return; }
    $('share-url').value = body.url;
    try { await navigator.clipboard.writeText(body.url); toast('链接已复制'); } catch (e) { $('share-url').select(); }
  };
  $('emergency-make').onclick = async () => {
    const res = await fetch(`${location.pathname.replace(/\/$/, '')}/emergency`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ study_uid: study() && study().study_uid }),
    });
    const body = await res.json().catch(() => ({}));
    $('emergency-status').textContent = res.ok
      ? `已提交（${body.status_text || body.status}），影像到达后将自动出现在检查列表中。`
      : `暂时无法发起应急调阅（${(body.error && body.error.code) || res.status}）`;
  };
  window.addEventListener('resize', () => viewport && viewport.getRenderingEngine().resize(true, true));
}

async function loadReport() {
  const s = study();
  const box = $('report');
  if (!s || !s.report) { box.textContent = '暂无报告'; return; }
  const r = s.report;
  box.innerHTML = '';
  const head = document.createElement('p');
  head.className = 'report-meta';
  head.textContent = [r.title || '检查报告', r.reported_at ? `出具时间 ${r.reported_at}` : ''].filter(Boolean).join(' · ');
  box.append(head);
  if (r.kind === 'pdf') {
    // phone browsers do not render a PDF inside a page (Android) or show one page only (iOS): open it whole
    const a = document.createElement('a');
    a.href = r.url; a.target = '_blank'; a.rel = 'noopener'; a.className = 'report-pdf';
    a.textContent = '打开报告（PDF）';
    box.append(a);
    return;
  }
  let body;
  try {
    const res = await fetch(r.url);
    if (!res.ok) throw new Error(String(res.status));
    body = await res.json();
  } catch (e) {
    box.append(Object.assign(document.createElement('p'), { textContent: '报告暂时无法加载，请稍后重试' }));
    return;
  }
  // textContent only: report text comes from the hospital's systems and is never parsed as HTML
  const render = (nodes, depth) => {
    for (const n of nodes || []) {
      if (n.children && n.children.length) {
        const h = document.createElement(depth ? 'h5' : 'h4');
        h.textContent = n.name || '';
        box.append(h);
        if (n.value) box.append(Object.assign(document.createElement('p'), { textContent: n.value }));
        render(n.children, depth + 1);
      } else {
        const p = document.createElement('p');
        p.textContent = n.name ? `${n.name}：${n.value}` : n.value;
        box.append(p);
      }
    }
  };
  render(body.content, 0);
}

async function start() {
  renderHeader();
  renderSeriesStrip();
  wireUi();
  if (!study() || !study().series.length) return;
  await csInit({ rendering: { useCPURendering: softwareGL() || !getRenderingCapabilities().webgl } });
  FILM.mark('core_ready');
  loaderInit({ maxWebWorkers: Math.min(2, navigator.hardwareConcurrency || 1) });
  toolsInit();
  Object.values(TOOLS).forEach((T) => addTool(T));
  toolGroup = ToolGroupManager.createToolGroup('film');
  Object.values(TOOLS).forEach((T) => toolGroup.addTool(T.toolName));
  const engine = new RenderingEngine('film');
  const element = $('viewport');
  element.oncontextmenu = (e) => e.preventDefault();
  engine.enableElement({ viewportId: 'stack', type: csEnums.ViewportType.STACK, element });
  viewport = engine.getViewport('stack');
  toolGroup.addViewport('stack', 'film');
  toolGroup.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: MB.Wheel }] });
  toolGroup.setToolActive(ZoomTool.toolName, { bindings: [{ mouseButton: MB.Secondary }, { numTouchPoints: 2 }] });
  toolGroup.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: MB.Auxiliary }, { numTouchPoints: 3 }] });
  setTool('WindowLevel');
  element.addEventListener(csEnums.Events.STACK_NEW_IMAGE, updateOverlay);
  element.addEventListener(csEnums.Events.VOI_MODIFIED, updateOverlay);
  element.addEventListener(csEnums.Events.IMAGE_RENDERED, () => {
    if (!FILM.ready) {
      $('fp').style.display = 'none';
      FILM.mark('cornerstone_image');
      FILM.ready = true;
    }
  });
  eventTarget.addEventListener(csEnums.Events.IMAGE_LOAD_ERROR, () => toast('部分影像加载失败，请稍后重试'));
  FILM.mark('tools_ready');
  FILM.viewport = viewport;
  await showSeries(0);
}

start().catch((e) => {
  FILM.error = String(e && e.stack ? e.stack : e);
  $('loading').textContent = '影像查看器加载失败，请刷新重试';
  console.error(e);
});
