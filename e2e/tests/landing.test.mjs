// The patient landing page of a reception link, as a phone shows it.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import AxeBuilder from '@axe-core/playwright';
import { hydrated, launchBrowser, phonePage, screenshot, startServer } from './harness.mjs';

const NAME_JA = 'うけつけ内科クリニック（デモ）';
const NAME_EN = 'Uketsuke Internal Medicine Clinic (demo)';

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

async function assertNoAxeViolations(page) {
  const result = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21aa', 'wcag22aa']).analyze();
  const summary = result.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target).join(', ')}`);
  assert.deepEqual(summary, [], 'axe-core violations');
}

describe('landing page', () => {
  test('loads in Japanese at phone size with no WASM, switches to English and back', async () => {
    const { context, page, problems } = await phonePage(browser);
    const response = await page.goto(`${server.base}/r/${server.links.online_care}`);
    assert.equal(response.status(), 200);
    assert.equal(await page.locator('html').getAttribute('lang'), 'ja');
    assert.equal(await page.locator('h1').textContent(), NAME_JA);
    assert.match(await page.locator('[data-testid=window]').textContent(), /翌日23時59分/);
    await hydrated(page);
    await screenshot(page, 'landing-ja');

    // The landing page is server-rendered HTML with no island: it downloads no WASM.
    assert.equal(await page.locator('leptos-island').count(), 0);
    assert.equal(await page.evaluate(() => performance.getEntriesByType('resource')
      .filter((r) => r.name.endsWith('.wasm')).length), 0, 'no WASM fetched');

    // The switch is a plain link to the same page with ?lang= (the page is rendered on the
    // server in that language); the rest of the query is kept.
    await page.getByTestId('lang-switch').click();
    await page.waitForFunction(() => document.documentElement.lang === 'en');
    assert.match(page.url(), /[?&]lang=en$/);
    assert.equal(await page.locator('h1').textContent(), NAME_EN);
    assert.match(await page.title(), /Uketsuke/);
    assert.match(await page.locator('[data-testid=window]').textContent(), /day after your visit/);
    await screenshot(page, 'landing-en');
    await assertNoAxeViolations(page);

    await page.getByTestId('lang-switch').click();
    await page.waitForFunction(() => document.documentElement.lang === 'ja');
    assert.equal(await page.locator('h1').textContent(), NAME_JA);
    await assertNoAxeViolations(page);

    assert.deepEqual(problems, []);
    await context.close();
  });

  test('the chosen language is remembered for the next pages', async () => {
    const { context, page, problems } = await phonePage(browser);
    await page.goto(`${server.base}/r/${server.links.separate_route}`);
    await hydrated(page);
    await page.getByTestId('lang-switch').click();
    await page.waitForFunction(() => document.documentElement.lang === 'en');
    // A later visit without ?lang= (the cookie the server set remembers the choice).
    await page.goto(`${server.base}/r/${server.links.separate_route}`);
    assert.equal(await page.locator('html').getAttribute('lang'), 'en');
    assert.equal(await page.locator('h1').textContent(), NAME_EN);
    await hydrated(page);
    assert.deepEqual(problems, []);
    await context.close();
  });

  test('works without JavaScript: the page is whole and the switch is a plain link', async () => {
    const { context, page } = await phonePage(browser, { javaScriptEnabled: false });
    await page.goto(`${server.base}/r/${server.links.online_care}`);
    assert.equal(await page.locator('h1').textContent(), NAME_JA);
    await page.getByTestId('lang-switch').click();
    await page.waitForURL(/lang=en/);
    assert.equal(await page.locator('h1').textContent(), NAME_EN);
    await context.close();
  });

  test('every reception kind has its own page; institution-device kinds say so', async () => {
    const { context, page, problems } = await phonePage(browser);
    const titles = new Set();
    for (const [kind, id] of Object.entries(server.links)) {
      const response = await page.goto(`${server.base}/r/${id}`);
      assert.equal(response.status(), 200, kind);
      titles.add(await page.getByTestId('kind').textContent());
      const onInstitutionDevice = await page.getByTestId('institution-device').count();
      const expected = ['device_failure', 'home_visit', 'house_call', 'eligibility_only'].includes(kind) ? 1 : 0;
      assert.equal(onInstitutionDevice, expected, kind);
      await hydrated(page);
    }
    assert.equal(titles.size, 6);
    assert.deepEqual(problems, []);
    await context.close();
  });

  test('fits a 360 px wide screen without sideways scrolling', async () => {
    const { context, page } = await phonePage(browser, { viewport: { width: 360, height: 740 } });
    await page.goto(`${server.base}/r/${server.links.online_care}?lang=en`);
    await hydrated(page);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `page is ${overflow}px wider than the screen`);
    await context.close();
  });
});

describe('invalid links', () => {
  test('an unknown link id gets 「このリンクは無効です」 with status 404', async () => {
    const { context, page, problems } = await phonePage(browser);
    const url = `${server.base}/r/00000000000000000000000000`;
    const response = await page.goto(url);
    assert.equal(response.status(), 404);
    assert.equal(await page.locator('h1').textContent(), 'このリンクは無効です');
    await hydrated(page);
    await screenshot(page, 'invalid-link-ja');
    await assertNoAxeViolations(page);
    // Chromium reports the document's own 404 status on the console; nothing else may appear.
    assert.deepEqual(problems.filter((p) => !p.includes('status of 404')), []);
    await context.close();
  });

  test('malformed ids and unknown paths are 404 pages too, never a crash', async () => {
    const { context, page } = await phonePage(browser);
    for (const path of ['/r/%E2%80%AE..%2F..', '/r/' + 'z'.repeat(300), '/nowhere', '/r/']) {
      const response = await page.goto(server.base + path);
      assert.equal(response.status(), 404, path);
      assert.ok((await page.locator('h1').count()) === 1, path);
    }
    await context.close();
  });
});
