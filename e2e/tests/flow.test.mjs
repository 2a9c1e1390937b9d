// The patient flow end to end through the full stack (release server, relay, built-in
// simulator) in Chromium at phone size: every reception kind with the practice card, the card
// step's errors, special people of the population, back/forward/reload, no JavaScript, English,
// and a record of every request proving the PIN's digits are in none of them.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hydrated, launchBrowser, phonePage, screenshot, startServer } from './harness.mjs';
import { assertNoAxeViolations, signWithPracticeCard, toReview, waitDone } from './patient.mjs';

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

describe('patient flow', () => {
  test('separate route in Japanese, and no request ever carries the PIN', async () => {
    const { context, page, problems } = await phonePage(browser);
    const seen = [];
    page.on('request', (request) => {
      seen.push([request.url(), request.postData() ?? '', JSON.stringify(request.headers())].join('\n'));
    });
    await toReview(server, page, 'separate_route', { shots: 'ja' });
    // Person 4 has the demo PIN 5678.
    await signWithPracticeCard(page, 4, '5678', { shots: 'ja' });
    await waitDone(page);
    const number = await page.getByTestId('reception-number').textContent();
    assert.match(number, /^\d{8}$/);
    assert.match(await page.getByTestId('window-end').textContent(), /23時59分（日本時間）/);
    assert.ok(await page.getByTestId('photo-id').isVisible());
    await screenshot(page, 'flow-ja-7-done');
    await assertNoAxeViolations(page, 'done');
    const withPin = seen.filter((r) => r.includes('5678'));
    assert.deepEqual(withPin, [], 'no request carries the PIN');
    assert.ok(seen.some((r) => r.includes('/api/session/registration')), 'the registration was recorded');
    // A reload of the done screen resumes it.
    await page.reload();
    assert.equal(await page.getByTestId('reception-number').textContent(), number);
    assert.deepEqual(problems, []);
    await context.close();
  });

  test('online care in English: date, wrong PIN with tries left, done, cancel', async () => {
    const { context, page, problems } = await phonePage(browser, { locale: 'en-GB' });
    await page.goto(`${server.base}/r/${server.links.online_care}?lang=en`);
    await toReview(server, page, 'online_care', { clinical: 'yes', checkups: 'yes', shots: 'en' });
    assert.match(await page.getByTestId('review-window').textContent(), /23:59 \(Japan time\)/);
    await page.getByTestId('to-card').click();
    await page.waitForURL(/\/card$/);
    await hydrated(page);
    await page.getByTestId('use-practice').click();
    await page.getByTestId('pin').waitFor({ timeout: 30_000 });
    assert.match(await page.getByTestId('tries').textContent(), /3 more wrong tries/);
    await page.getByTestId('pin').fill('0000');
    await page.getByTestId('send').click();
    await page.getByTestId('card-error').getByText(/Wrong PIN\. 2 more/).waitFor({ timeout: 30_000 });
    await screenshot(page, 'flow-en-6-wrong-pin');
    await assertNoAxeViolations(page, 'wrong pin');
    await page.getByTestId('pin').fill('1234');
    await page.getByTestId('send').click();
    await waitDone(page);
    assert.match(await page.getByTestId('window-end').textContent(), /23:59 \(Japan time\)/);
    await screenshot(page, 'flow-en-7-done');
    await assertNoAxeViolations(page, 'done');
    await page.getByTestId('cancel-link').click();
    await page.waitForURL(/\/cancel\//);
    await screenshot(page, 'flow-en-8-cancel');
    await assertNoAxeViolations(page, 'cancel');
    await page.getByTestId('cancel-button').click();
    await page.getByTestId('cancelled').waitFor();
    await screenshot(page, 'flow-en-9-cancelled');
    assert.deepEqual(problems, []);
    await context.close();
  });

  test('every reception kind registers with the practice card', async () => {
    for (const kind of ['device_failure', 'home_visit', 'house_call', 'eligibility_only']) {
      const { context, page, problems } = await phonePage(browser);
      await toReview(server, page, kind);
      await signWithPracticeCard(page, 1, '1234');
      await waitDone(page);
      assert.match(await page.getByTestId('reception-number').textContent(), /^\d{8}$/, kind);
      if (kind === 'eligibility_only') {
        assert.match(await page.getByTestId('window-end').textContent(), /医療情報は提供されません/);
      }
      assert.deepEqual(problems, [], kind);
      await context.close();
    }
  });

  test('special people: revoked certificate, J-LIS review, card not registered', async () => {
    {
      const { context, page } = await phonePage(browser);
      await toReview(server, page, 'separate_route');
      await signWithPracticeCard(page, 26, '0120');
      await page.getByTestId('card-error').getByText(/失効/).waitFor({ timeout: 30_000 });
      await screenshot(page, 'flow-ja-error-revoked');
      await context.close();
    }
    // Person 21's card is not registered for insurance use: the done screen offers to
    // register it there (e2e/tests/insurance-use.test.mjs follows the offer).
    for (const [person, pin, words, shot, testid] of [
      [20, '3454', /J-LIS/, 'flow-ja-jlis', 'eligibility-problem'],
      [21, '4565', /利用登録/, 'flow-ja-not-registered', 'insurance-offer'],
    ]) {
      const { context, page } = await phonePage(browser);
      await toReview(server, page, 'separate_route');
      await signWithPracticeCard(page, person, pin);
      await waitDone(page);
      // The done screen waits for the eligibility: its words are there on its one showing.
      await page.getByTestId(testid).waitFor({ timeout: 1_000 });
      assert.match(await page.getByTestId(testid).textContent(), words);
      await screenshot(page, shot);
      await context.close();
    }
  });

  test('back, forward and reload keep the choices', async () => {
    const { context, page } = await phonePage(browser);
    await toReview(server, page, 'separate_route', { clinical: 'no', checkups: 'yes' });
    assert.match(await page.getByTestId('review-clinical').textContent(), /同意しない/);
    await page.reload();
    assert.match(await page.getByTestId('review-checkups').textContent(), /同意する/);
    await page.goBack();
    await page.waitForURL(/\/consent/);
    assert.ok(await page.locator('input[name=clinical_medication][value=no]').isChecked());
    assert.ok(await page.locator('input[name=checkups][value=yes]').isChecked());
    await page.goForward();
    await page.waitForURL(/\/review$/);
    assert.match(await page.getByTestId('review-checkups').textContent(), /同意する/);
    await context.close();
  });

  test('without JavaScript the forms work up to the card step, which explains', async () => {
    const { context, page } = await phonePage(browser, { javaScriptEnabled: false });
    await toReview(server, page, 'online_care');
    await page.getByTestId('to-card').click();
    await page.waitForURL(/\/card$/);
    const text = await page.locator('main').textContent();
    assert.match(text, /JavaScript/);
    await screenshot(page, 'flow-ja-nojs-card');
    await context.close();
  });
});

describe('consents at this institution', () => {
  test('the patient sees their receptions with the card again, changes a consent and withdraws them all', async () => {
    let { context, page, problems } = await phonePage(browser);
    await toReview(server, page, 'separate_route');
    await signWithPracticeCard(page, 7, '9011');
    await waitDone(page);
    await context.close();
    // Later, in a new browser session: the card proves who it is.
    ({ context, page, problems } = await phonePage(browser));
    await page.goto(`${server.base}/r/${server.links.separate_route}`);
    await page.getByTestId('manage-link').click();
    await page.waitForURL(/\/manage$/);
    await page.getByTestId('manage-start').click();
    await page.waitForURL(/\/manage$/);
    await hydrated(page);
    await page.getByTestId('demo-person').selectOption('7');
    await page.getByTestId('use-practice').click();
    await page.getByTestId('pin').waitFor({ timeout: 30_000 });
    await page.getByTestId('pin').fill('9011');
    await page.getByTestId('send').click();
    await page.getByTestId('managed').waitFor({ timeout: 30_000 });
    await screenshot(page, 'flow-ja-manage-list');
    await assertNoAxeViolations(page, 'manage');
    // 同意の更新: the form is prefilled with the consents given at registration (診療・薬剤情報
    // yes, 特定健診等情報 no); the patient swaps them and saves.
    const form = page.locator('form[data-testid^="consent-edit-"]');
    assert.equal(await form.count(), 1);
    const clinical = form.getByRole('group', { name: '診療・薬剤情報' });
    const checkups = form.getByRole('group', { name: '特定健診等情報' });
    assert.equal(await clinical.getByLabel('同意する', { exact: true }).isChecked(), true);
    assert.equal(await checkups.getByLabel('同意しない', { exact: true }).isChecked(), true);
    await clinical.getByLabel('同意しない', { exact: true }).check();
    await checkups.getByLabel('同意する', { exact: true }).check();
    await form.getByRole('button', { name: '変更を保存' }).click();
    const status = page.getByTestId('manage-status');
    await page.waitForFunction(
      () => document.querySelector('[data-testid="manage-status"]')?.textContent?.includes('変更しました'),
      null,
      { timeout: 15_000 },
    );
    assert.equal(await status.getAttribute('role'), 'status');
    assert.equal(await page.evaluate(() => document.activeElement?.dataset?.testid), 'manage-status');
    // The list is the server's answer: the new consents, in the summary and in the form.
    const item = page.getByTestId('managed-item');
    assert.match(await item.innerText(), /診療・薬剤情報: 同意しない \/ 特定健診等情報: 同意する/);
    const saved = page.locator('form[data-testid^="consent-edit-"]');
    assert.equal(await saved.getByRole('group', { name: '診療・薬剤情報' }).getByLabel('同意しない', { exact: true }).isChecked(), true);
    assert.equal(await saved.getByRole('group', { name: '特定健診等情報' }).getByLabel('同意する', { exact: true }).isChecked(), true);
    // A small phone: nothing wider than 360 px.
    await page.setViewportSize({ width: 360, height: 780 });
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 360), 'fits 360 px');
    await assertNoAxeViolations(page, 'manage after a change of consent');
    await screenshot(page, 'flow-manage-update');
    await page.getByTestId('withdraw-all').click();
    await page.getByTestId('managed-withdrawn').first().waitFor();
    assert.equal(await page.locator('form[data-testid^="consent-edit-"]').count(), 0);
    await screenshot(page, 'flow-ja-manage-withdrawn');
    assert.deepEqual(problems, []);
    await context.close();
  });
});
