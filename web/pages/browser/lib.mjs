// What the pages' browser checks share: headless Chromium (the same launch as web/film/browser-check.mjs),
// a phone or desktop page that records script errors and Content-Security-Policy violations, axe-core,
// and "what a person sees" checks: text present, no two pieces of text drawn over each other, nothing
// wider than the screen.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export const SIZES = {
  phone: { viewport: { width: 375, height: 667 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2,
    userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 MicroMessenger/8.0.47' },
  desktop: { viewport: { width: 1280, height: 800 } },
};

export function options(argv) {
  const args = argv.slice(2);
  const opt = (name, dflt) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : dflt; };
  return { flow: args[0], opt };
}

export async function launch(executablePath) {
  return chromium.launch({
    executablePath: executablePath || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

export async function openPage(browser, size, out) {
  const context = await browser.newContext(SIZES[size]);
  const page = await context.newPage();
  page.on('pageerror', (e) => out.errors.push(String(e).slice(0, 300)));
  page.on('console', (m) => {
    const text = m.text();
    if (/Content Security Policy/i.test(text)) out.csp_violations.push(text.slice(0, 300));
    else if (m.type() === 'error' && !/status of 4\d\d/.test(text)) out.errors.push(text.slice(0, 300));
  });
  return page;
}

export async function ready(page, timeout = 20000) {
  await page.waitForSelector('body[data-ready="1"]', { timeout });
}

/** axe-core in the page (evaluated over the DevTools protocol, which the page's CSP does not govern). */
export async function axe(page) {
  await page.evaluate(AXE);
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, target: v.nodes[0]?.target, summary: v.nodes[0]?.failureSummary?.slice(0, 200) }));
  });
  return result;
}

export const serious = (violations) => violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');

/** Pairs of visible text runs whose boxes overlap, and whether the page is wider than the viewport. */
export async function layout(page) {
  return page.evaluate(() => {
    const boxes = [];
    // with a modal dialog open, the person sees the dialog: the page behind it is inert
    const root = document.querySelector('dialog[open]') || document.body;
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      if (!n.textContent.trim()) continue;
      const el = n.parentElement;
      if (!el || el.closest('.visually-hidden,[hidden],dialog:not([open])')) continue;
      if (el.closest('details:not([open])') && !el.closest('summary')) continue;
      const style = getComputedStyle(el);
      if (style.visibility === 'hidden' || style.display === 'none' || Number(style.opacity) === 0) continue;
      const range = document.createRange();
      range.selectNodeContents(n);
      for (const r of range.getClientRects()) if (r.width > 1 && r.height > 1) boxes.push({ r, text: n.textContent.trim().slice(0, 30), el });
    }
    const overlaps = [];
    for (let i = 0; i < boxes.length; i += 1) {
      for (let j = i + 1; j < boxes.length; j += 1) {
        const a = boxes[i].r; const b = boxes[j].r;
        const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
        const hh = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
        if (w > 2 && hh > 2 && boxes[i].el !== boxes[j].el) overlaps.push([boxes[i].text, boxes[j].text]);
      }
    }
    return { overlaps: overlaps.slice(0, 10), text_runs: boxes.length,
      too_wide: document.documentElement.scrollWidth > window.innerWidth + 1, width: document.documentElement.scrollWidth };
  });
}

export async function look(page, out, name, shotDir) {
  const seen = { text: await page.locator('main').innerText(), layout: await layout(page), axe: serious(await axe(page)) };
  if (shotDir) await page.screenshot({ path: `${shotDir}/${name}.png`, fullPage: true });
  out.looks[name] = seen;
  return seen;
}

export function newOut() {
  return { ok: false, errors: [], csp_violations: [], looks: {}, steps: {} };
}

/** Reads one line from stdin (the test tells the flow when it has done its part). */
export function nextLine() {
  return new Promise((resolve) => {
    let buf = '';
    const on = (chunk) => {
      buf += chunk;
      const i = buf.indexOf('\n');
      if (i >= 0) { process.stdin.off('data', on); process.stdin.pause(); resolve(buf.slice(0, i)); }
    };
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', on);
    process.stdin.resume();
  });
}
