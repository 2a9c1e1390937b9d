// The practice card's code is a separately loaded WASM chunk (split_practice_card.wasm,
// app/src/card/practice.rs): a patient's visit up to the card step never fetches it, choosing
// the practice card does, and a chunk that cannot be fetched (connection lost, server updated)
// shows what happened and a reload that recovers the step, in Japanese and in English, both on
// the card step and in the demo's practice app.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hydrated, launchBrowser, phonePage, screenshot, startServer } from './harness.mjs';
import { assertNoAxeViolations, toCardStep, toReview, waitDone } from './patient.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

// The card step's module and the off-path screens' module (pkg/all/) each have their own chunk.
const CHUNK = /\/pkg\/(all\/)?split_practice_card\.wasm$/;

/** Records the addresses of every WASM file the page fetches. */
function wasmRequests(page) {
  const seen = [];
  page.on('request', (request) => {
    const path = new URL(request.url()).pathname;
    if (path.endsWith('.wasm')) seen.push(path);
  });
  return seen;
}

/** Makes every fetch of the practice card's chunk fail as a lost connection does. */
async function breakChunk(page) {
  await page.route(CHUNK, (route) => route.abort('internetdisconnected'));
}

describe('the practice card is loaded only when chosen', () => {
  test('the card step loads no chunk until the practice card is chosen; then it does', async () => {
    const { context, page, problems } = await phonePage(browser);
    const wasm = wasmRequests(page);
    await toReview(server, page, 'separate_route');
    // Landing, consent and review are server-rendered with no island: no WASM at all.
    assert.deepEqual(wasm, [], 'no WASM before the card step');
    await toCardStep(page);
    await page.getByTestId('use-practice').waitFor();
    assert.deepEqual([...new Set(wasm)], ['/pkg/uketsuke.wasm'], 'only the main module so far');
    await page.getByTestId('demo-person').selectOption('1');
    await page.getByTestId('use-practice').click();
    await page.getByTestId('pin').waitFor({ timeout: 30_000 });
    assert.ok(wasm.some((path) => CHUNK.test(path)), `chunk fetched on choice: ${wasm}`);
    await page.getByTestId('pin').fill('1234');
    await page.getByTestId('send').click();
    await waitDone(page);
    assert.deepEqual(problems, []);
    await context.close();
  });

  test('a chunk that cannot be fetched: the error, then a reload that recovers the card step', async () => {
    const { context, page } = await phonePage(browser);
    await breakChunk(page);
    await toReview(server, page, 'separate_route');
    await toCardStep(page);
    await page.getByTestId('demo-person').selectOption('4');
    await page.getByTestId('use-practice').click();
    await page
      .getByTestId('card-error')
      .filter({ hasText: '練習用カードのプログラムを読み込めませんでした' })
      .waitFor({ timeout: 30_000 });
    // The page is alive: the ways are offered again, beside the reload.
    await page.getByTestId('use-practice').waitFor();
    await page.getByTestId('reload-page').waitFor();
    assert.equal(await page.getByTestId('reload-page').textContent(), 'ページを読み込み直す');
    await assertNoAxeViolations(page, 'card step, chunk failed');
    await screenshot(page, 'flow-ja-error-chunk-failed');

    // The connection is back: the reload recovers the step, and the practice card works.
    await page.unroute(CHUNK);
    await Promise.all([page.waitForEvent('load'), page.getByTestId('reload-page').click()]);
    assert.match(page.url(), /\/card$/);
    await hydrated(page);
    assert.equal(await page.getByTestId('reload-page').count(), 0);
    await page.getByTestId('demo-person').selectOption('4');
    await page.getByTestId('use-practice').click();
    await page.getByTestId('pin').waitFor({ timeout: 30_000 });
    await page.getByTestId('pin').fill('5678');
    await page.getByTestId('send').click();
    await waitDone(page);
    await context.close();
  });

  test('in English, and in the practice app: the error, the reload, then signing', async () => {
    const { context, page } = await phonePage(browser, { locale: 'en-GB' });
    await page.goto(`${server.base}/r/${server.links.separate_route}?lang=en`);
    await toReview(server, page, 'separate_route');
    await toCardStep(page);
    await page.getByTestId('use-app').click();
    await page.waitForURL(/\/eid-app#/);
    await hydrated(page);
    await page.getByTestId('app-origin').waitFor();

    await breakChunk(page);
    await page.getByTestId('demo-person').selectOption('1');
    await page.getByTestId('pin').fill('1234');
    await page.getByTestId('app-sign').click();
    await page
      .getByTestId('card-error')
      .filter({ hasText: 'The practice card could not be loaded' })
      .waitFor({ timeout: 30_000 });
    assert.equal(await page.getByTestId('reload-page').textContent(), 'Reload the page');
    assert.equal(await page.getByTestId('app-sign').isEnabled(), true, 'the form stays usable');
    await assertNoAxeViolations(page, 'practice app, chunk failed');
    await screenshot(page, 'flow-app-en-error-chunk-failed');

    // The app took the request out of the address bar; the reload puts it back first.
    await page.unroute(CHUNK);
    await Promise.all([page.waitForEvent('load'), page.getByTestId('reload-page').click()]);
    await hydrated(page);
    await page.getByTestId('app-origin').waitFor();
    assert.equal(await page.getByTestId('reload-page').count(), 0);
    await page.getByTestId('demo-person').selectOption('1');
    await page.getByTestId('pin').fill('1234');
    await page.getByTestId('app-sign').click();
    await waitDone(page);
    await context.close();
  });
});

describe('the screens off the reception\'s path', () => {
  test('同意照会 loads the module with every island, not the card step\'s', async () => {
    const { context, page, problems } = await phonePage(browser);
    const wasm = wasmRequests(page);
    await page.goto(`${server.base}/r/${server.links.separate_route}/manage`);
    // Before a session it is one plain form: no WASM.
    await page.getByTestId('manage-start').waitFor();
    await hydrated(page);
    assert.deepEqual(wasm, []);
    await page.getByTestId('manage-start').click();
    await page.waitForURL(/\/manage$/);
    await hydrated(page);
    await page.getByTestId('use-practice').waitFor();
    assert.deepEqual([...new Set(wasm)], ['/pkg/all/uketsuke.wasm']);
    assert.deepEqual(problems, []);
    await context.close();
  });
});

describe('the main WASM cannot be fetched', () => {
  test('the card step says so in the page\'s language instead of loading for ever', async () => {
    for (const [lang, words] of [['ja', '読み込み直して'], ['en', 'reload the page']]) {
      const { context, page } = await phonePage(browser);
      await toReview(server, page, 'separate_route');
      await page.route(/\/pkg\/uketsuke\.wasm$/, (route) => route.abort('internetdisconnected'));
      await page.goto(`${server.base}${new URL(page.url()).pathname.replace(/review$/, 'card')}?lang=${lang}`);
      await page.locator('body[data-wasm="failed"]').waitFor({ timeout: 30_000 });
      const line = page.getByTestId('card-loading');
      assert.match(await line.textContent(), new RegExp(words));
      assert.equal(await line.getAttribute('role'), 'alert');
      await screenshot(page, `chunk-main-wasm-failed-${lang}`);
      await context.close();
    }
  });
});
