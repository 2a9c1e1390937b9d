// The card step's errors that the flow suite does not reach (a PIN locked after three wrong
// tries, an expired certificate, no connection at the moment of sending, no insurance at all),
// and the hand-off to a card-reading app (SPEC §4), with the demo's practice app playing the app:
// the card step's deep link carries the challenge and the message to sign, the app signs with
// the card and returns the result in the URL fragment, and the return page submits it. Also the
// app stopped by the patient, a result that is not one, a forged signature, and an app request
// whose return address is on another site.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hydrated, launchBrowser, phonePage, screenshot, startServer } from './harness.mjs';
import { assertNoAxeViolations, signWithPracticeCard, toCardStep, toReview, waitDone } from './patient.mjs';

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

const b64url = (text) => Buffer.from(text).toString('base64url');
const unb64url = (text) => JSON.parse(Buffer.from(text, 'base64url').toString());

/** Review → card step → "read with an app": the practice app's page with the request. */
async function toApp(page, kind) {
  await toReview(server, page, kind);
  await toCardStep(page);
  await page.getByTestId('use-app').click();
  await page.waitForURL(/\/eid-app#/);
  await hydrated(page);
  await page.getByTestId('app-origin').waitFor();
}

describe('card step errors', () => {
  test('three wrong PINs lock the card; the words say where to reset it', async () => {
    const { context, page } = await phonePage(browser);
    await toReview(server, page, 'separate_route');
    // Person 15's demo PIN is 7899.
    await signWithPracticeCard(page, 15, '0000');
    await page.getByTestId('card-error').filter({ hasText: 'あと 2 回' }).waitFor({ timeout: 30_000 });
    assert.match(await page.getByTestId('tries').textContent(), /2/);
    await page.getByTestId('pin').fill('0001');
    await page.getByTestId('send').click();
    await page.getByTestId('card-error').filter({ hasText: 'あと 1 回' }).waitFor({ timeout: 30_000 });
    await page.getByTestId('pin').fill('0002');
    await page.getByTestId('send').click();
    await page.getByTestId('card-error').filter({ hasText: 'ロックされています' }).waitFor({ timeout: 30_000 });
    assert.match(await page.getByTestId('card-error').textContent(), /市区町村の窓口/);
    assert.equal(await page.getByTestId('pin').count(), 0, 'no PIN pad for a locked card');
    await assertNoAxeViolations(page, 'card step, PIN locked');
    await screenshot(page, 'flow-ja-error-pin-locked');
    await context.close();
  });

  test('an expired certificate, and no connection when sending (nothing lost)', async () => {
    {
      const { context, page } = await phonePage(browser);
      await toReview(server, page, 'separate_route');
      // Person 27's certificate has expired; demo PIN 1231.
      await signWithPracticeCard(page, 27, '1231');
      await page.getByTestId('card-error').filter({ hasText: '有効期限' }).waitFor({ timeout: 30_000 });
      await screenshot(page, 'flow-ja-error-expired');
      await context.close();
    }
    const { context, page } = await phonePage(browser);
    await toReview(server, page, 'house_call');
    await toCardStep(page);
    await page.getByTestId('use-practice').click();
    await page.getByTestId('pin').waitFor({ timeout: 30_000 });
    await context.setOffline(true);
    await page.getByTestId('pin').fill('1234');
    await page.getByTestId('send').click();
    await page.getByTestId('card-error').filter({ hasText: 'インターネット' }).waitFor({ timeout: 30_000 });
    await screenshot(page, 'flow-ja-error-offline');
    await context.setOffline(false);
    await page.getByTestId('pin').fill('1234');
    await page.getByTestId('send').click();
    await waitDone(page);
    assert.match(await page.getByTestId('reception-number').textContent(), /^\d{8}$/);
    await context.close();
  });

  test('the answer to a registration that went through is lost; trying again shows the done screen', async () => {
    const { context, page } = await phonePage(browser);
    await toReview(server, page, 'separate_route');
    // The server takes the registration, and its answer never reaches the phone.
    let accepted = null;
    await page.route(/\/api\/session\/registration$/, async (route) => {
      const answer = await route.fetch();
      accepted = answer.status();
      await route.abort('internetdisconnected');
    });
    await signWithPracticeCard(page, 1, '1234');
    await page.getByTestId('card-error').filter({ hasText: 'インターネット' }).waitFor({ timeout: 30_000 });
    assert.equal(accepted, 202, 'the server accepted the registration');
    await page.unroute(/\/api\/session\/registration$/);
    // Trying again: the server says it has it; the patient lands on the done screen with the
    // reception's number, not on "already sent" beside a PIN pad.
    await page.getByTestId('pin').fill('1234');
    await page.getByTestId('send').click();
    await waitDone(page);
    assert.match(await page.getByTestId('reception-number').textContent(), /^\d{8}$/);
    await context.close();
  });

  test('a PIN typed in full-width digits (a Japanese input method) is taken', async () => {
    const { context, page } = await phonePage(browser);
    await toReview(server, page, 'separate_route');
    await signWithPracticeCard(page, 1, '１２３４');
    await waitDone(page);
    assert.match(await page.getByTestId('reception-number').textContent(), /^\d{8}$/);
    await context.close();
  });

  test('a person with no insurance is registered and told to show documents', async () => {
    const { context, page } = await phonePage(browser);
    await toReview(server, page, 'separate_route');
    // Person 23 has no insurance at all; demo PIN 6787.
    await signWithPracticeCard(page, 23, '6787');
    await waitDone(page);
    await page.getByTestId('eligibility-problem').waitFor({ timeout: 20_000 }).catch(async () => {
      await page.reload();
      await page.getByTestId('eligibility-problem').waitFor({ timeout: 20_000 });
    });
    assert.match(await page.getByTestId('eligibility-problem').textContent(), /保険証等/);
    await screenshot(page, 'flow-ja-no-qualification');
    await context.close();
  });
});

describe('the language switch on a screen with islands', () => {
  test('switches in place: the open PIN pad stays, every text changes, the choice is remembered', async () => {
    const { context, page, problems } = await phonePage(browser);
    await toReview(server, page, 'separate_route');
    await toCardStep(page);
    await page.getByTestId('demo-person').selectOption('4');
    await page.getByTestId('use-practice').click();
    await page.getByTestId('pin').waitFor({ timeout: 30_000 });
    await page.getByTestId('pin').fill('56');
    await page.evaluate(() => { window.__sameDocument = true; });

    await page.getByTestId('lang-switch').click();
    await page.waitForFunction(() => document.documentElement.lang === 'en');
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'no navigation happened');
    assert.equal(await page.locator('h1').textContent(), 'Confirm with your My Number Card');
    assert.match(await page.locator('label[for=pin]').textContent(), /PIN of the user certificate/);
    assert.equal(await page.getByTestId('pin').inputValue(), '56', 'what was typed stays');
    assert.equal(await page.getByTestId('lang-switch').textContent(), '日本語');
    assert.match(await page.title(), /Uketsuke/);
    assert.doesNotMatch(page.url(), /lang=/);
    await assertNoAxeViolations(page, 'card step switched to English');

    // The PIN pad still works in the new language, and the next screen comes in it.
    await page.getByTestId('pin').fill('5678');
    await page.getByTestId('send').click();
    await waitDone(page);
    assert.equal(await page.locator('html').getAttribute('lang'), 'en');
    assert.deepEqual(problems, []);
    await context.close();
  });
});

describe('card-reading app hand-off', () => {
  test('the app signs and the browser finishes the reception; the PIN is in no request', async () => {
    const { context, page, problems } = await phonePage(browser);
    const seen = [];
    page.on('request', (request) => {
      seen.push([request.url(), request.postData() ?? '', JSON.stringify(request.headers())].join('\n'));
    });
    await toApp(page, 'separate_route');
    // The deep link's request names our origin, the challenge and the exact binding text.
    assert.equal(await page.getByTestId('app-origin').textContent(), new URL(server.base).origin);
    assert.equal(new URL(page.url()).hash, '', 'the request is taken off the address bar');
    await assertNoAxeViolations(page, 'practice app');
    await screenshot(page, 'flow-app-1-practice-app');
    // Person 4 has the demo PIN 5678.
    await page.getByTestId('demo-person').selectOption('4');
    await page.getByTestId('pin').fill('5678');
    await page.getByTestId('app-sign').click();
    await waitDone(page);
    assert.match(await page.getByTestId('reception-number').textContent(), /^\d{8}$/);
    await screenshot(page, 'flow-app-2-done');
    const withPin = seen.filter((r) => r.includes('5678'));
    assert.deepEqual(withPin, [], 'no request carries the PIN');
    assert.ok(seen.some((r) => r.includes('/eid-return')), 'the result came back through the return page');
    assert.deepEqual(problems, []);
    await context.close();
  });

  test('the patient stops in the app, or the result is not one, or is forged', async () => {
    const { context, page, problems } = await phonePage(browser);
    await toApp(page, 'house_call');
    await page.getByTestId('app-cancel').click();
    await page.waitForURL(/\/eid-return$/);
    await page.getByTestId('card-error').filter({ hasText: '中止' }).waitFor();
    await assertNoAxeViolations(page, 'app return, cancelled');
    await screenshot(page, 'flow-app-3-cancelled');
    await page.getByTestId('back-to-card').click();
    await page.waitForURL(/\/card$/);
    await hydrated(page);

    // Not a result at all.
    await page.goto(`${server.base}/r/${server.links.house_call}/eid-return#garbage`);
    await hydrated(page);
    await page.getByTestId('card-error').filter({ hasText: 'やり直して' }).waitFor();

    // A well-formed result for a real challenge, with a signature the card never made.
    await page.goto(`${server.base}/r/${server.links.house_call}/card`);
    await hydrated(page);
    await page.getByTestId('use-app').click();
    await page.waitForURL(/\/eid-app#/);
    const request = unb64url(new URL(page.url()).hash.slice(1));
    assert.equal(request.v, 1);
    assert.match(request.message, /house_call/);
    assert.equal(request.return_uri, `${new URL(server.base).origin}/r/${server.links.house_call}/eid-return`);
    const forged = b64url(JSON.stringify({
      v: 1,
      challenge: request.challenge,
      certificate: b64url('not a certificate'),
      signature: b64url('x'.repeat(256)),
    }));
    await page.goto(`${request.return_uri}#${forged}`);
    await hydrated(page);
    await page.getByTestId('card-error').filter({ hasText: '電子証明書' }).waitFor();
    assert.deepEqual(problems.filter((p) => !/status of 422/.test(p)), []);
    await context.close();
  });

  test('in English: the ways to the card, the practice app, and a stop in the app', async () => {
    const { context, page, problems } = await phonePage(browser, { locale: 'en-GB' });
    await page.goto(`${server.base}/r/${server.links.separate_route}?lang=en`);
    await toReview(server, page, 'separate_route');
    await toCardStep(page);
    await page.getByRole('button', { name: 'Read with a card-reading app' }).waitFor();
    await assertNoAxeViolations(page, 'card ways in English');
    await screenshot(page, 'flow-en-5-card-ways');
    await page.getByTestId('use-app').click();
    await page.waitForURL(/\/eid-app#/);
    await hydrated(page);
    await page.getByRole('heading', { name: 'The site asking you to confirm' }).waitFor();
    await screenshot(page, 'flow-app-en-1-practice-app');
    await page.getByTestId('app-cancel').click();
    await page.waitForURL(/\/eid-return$/);
    await page.getByTestId('card-error').filter({ hasText: 'stopped' }).waitFor();
    await screenshot(page, 'flow-app-en-3-cancelled');
    assert.deepEqual(problems, []);
    await context.close();
  });

  test('同意照会 through the app: the list appears back on the management page', async () => {
    {
      const { context, page } = await phonePage(browser);
      await toReview(server, page, 'separate_route');
      await signWithPracticeCard(page, 16, '9010');
      await waitDone(page);
      await context.close();
    }
    const { context, page, problems } = await phonePage(browser);
    await page.goto(`${server.base}/r/${server.links.separate_route}/manage`);
    await page.getByTestId('manage-start').click();
    await page.waitForURL(/\/manage$/);
    await hydrated(page);
    await page.getByTestId('use-app').click();
    await page.waitForURL(/\/eid-app#/);
    await hydrated(page);
    await page.getByTestId('demo-person').selectOption('16');
    await page.getByTestId('pin').fill('9010');
    await page.getByTestId('app-sign').click();
    await page.waitForURL(/\/manage$/);
    await page.getByTestId('managed').waitFor({ timeout: 30_000 });
    assert.match(await page.getByTestId('managed').textContent(), /外来受付/);
    assert.deepEqual(problems, []);
    await context.close();
  });

  test('the app refuses a request that returns to another site', async () => {
    const { context, page } = await phonePage(browser);
    const request = b64url(JSON.stringify({
      v: 1,
      origin: new URL(server.base).origin,
      challenge: 'c'.repeat(43),
      message: 'anything',
      return_uri: 'https://attacker.example/steal',
    }));
    await page.goto(`${server.base}/r/${server.links.house_call}/eid-app#${request}`);
    await hydrated(page);
    await page.getByTestId('card-error').filter({ hasText: '扱えません' }).waitFor();
    assert.equal(await page.getByTestId('app-sign').count(), 0);
    await context.close();
  });
});
