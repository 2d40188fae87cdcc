// Browser flows of the service bot's pages on a running local stack (headless Chromium), driven by
// tests/integration/assistant/test_assistant_stack.py. Prints one JSON line: what was seen at each step.
//   node flows.mjs chat --base URL --chromium PATH    the patient's widget, phone-sized; after "转人工" it
//                                                      prints {"handoff": ...} and waits for a line on stdin
//                                                      (the test's agent has replied), then reads the reply
//   node flows.mjs desk --base URL --token T --chromium PATH   the agent desk: take the first, reply, close
import { launch, openPage, ready, look, newOut, nextLine, options } from '../../pages/browser/lib.mjs';

const { flow, opt } = options(process.argv);
const base = opt('base');
const out = newOut();
const browser = await launch(opt('chromium'));

async function lastBot(page) {
  return page.locator('#log .msg').last().innerText();
}

async function askChat(page, text) {
  const before = await page.locator('#log .msg').count();
  await page.fill('#ask', text);
  await page.click('form.send button');
  await page.waitForFunction((n) => document.querySelectorAll('#log .msg').length >= n + 2, before);
  await page.waitForSelector('.typing[hidden]', { state: 'attached' });
  return lastBot(page);
}

try {
  if (flow === 'chat') {
    const page = await openPage(browser, 'phone', out);
    await page.goto(`${base}/assistant/pages/chat`);
    await ready(page);
    out.steps.chips = await page.locator('.chips button').allInnerTexts();
    out.steps.navigate = await askChat(page, 'b超在哪');
    out.steps.navigate_card = await page.locator('#log .msg').last().locator('a.card').getAttribute('href');
    out.steps.parking = await askChat(page, '停车怎么收费');
    out.steps.hours = await askChat(page, '几点开门');
    out.steps.weekend = await askChat(page, '那周末呢');
    out.steps.emergency = await askChat(page, '我胸口疼得厉害');
    out.steps.emergency_marked = await page.locator('#log .msg.emergency').count();
    await look(page, out, 'chat', opt('shots'));
    out.steps.handoff = await askChat(page, '转人工');
    await page.waitForSelector('.status:not([hidden])');
    out.steps.status = await page.locator('.status').innerText();
    console.log(JSON.stringify({ handoff: true }));
    await nextLine();
    await page.waitForSelector('#log .msg.agent', { timeout: 15000 });
    out.steps.agent_reply = await page.locator('#log .msg.agent').last().innerText();
    out.steps.status_after = await page.locator('.status').innerText();
    await look(page, out, 'chat-agent', opt('shots'));
    out.ok = true;
  } else if (flow === 'desk') {
    const page = await openPage(browser, 'desktop', out);
    await page.goto(`${base}/assistant/pages/desk#token=${opt('token')}`);
    await ready(page);
    out.steps.queue = await page.locator('#queue li').allInnerTexts();
    await page.locator('#queue li button').first().click();
    await page.waitForSelector('#reply');
    out.steps.transcript = await page.locator('#detail [role=log]').innerText();
    out.steps.suggestions = await page.locator('.suggest button').count();
    await page.locator('.suggest button').first().click();
    out.steps.filled = await page.inputValue('#reply');
    await page.fill('#reply', '您好，我是人工客服，已收到您的问题。');
    await page.click('#send');
    await page.waitForFunction(() => document.querySelector('#detail [role=log]')?.textContent?.includes('已收到您的问题'));
    await look(page, out, 'desk', opt('shots'));
    out.ok = true;
  }
} catch (e) {
  out.errors.push(String(e).slice(0, 500));
} finally {
  await browser.close();
  console.log(JSON.stringify(out));
}
