// 健康保険証利用登録 from the flow (issue 15 §2) in Chromium at 360×740: person 21 of the
// simulator (「未登録 良子」, insured, card not registered for insurance use) registers with the
// practice card; the done screen offers registration instead of the problem's words; the terms
// page, consent and the card step (another person's card is refused as not the reception's);
// then the card is registered and eligibility is found. Screenshots of the offer, the terms and
// the result in Japanese and English.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hydrated, launchBrowser, phonePage, screenshot, startServer } from './harness.mjs';
import { assertNoAxeViolations, signWithPracticeCard, toReview, waitDone } from './patient.mjs';

const UNREGISTERED = 21;
const OTHER = 1;
// The simulator's rule (backend/src/simulator/population.rs, pin_of).
const demoPin = (no) => (no === 1 ? '1234' : String((1234 + no * 1111) % 10_000).padStart(4, '0'));
const SMALL_PHONE = { width: 360, height: 740 };

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

/** The page fits the phone's width (no sideways scrolling). */
async function fits(page) {
  assert.ok(
    await page.evaluate((w) => document.documentElement.scrollWidth <= w, SMALL_PHONE.width),
    'fits a 360 px phone',
  );
}

/** Shoots the page at `url` in Japanese, then in English (the page is left in English). */
async function bothLanguages(page, url, name, ready) {
  for (const lang of ['ja', 'en']) {
    await page.goto(`${url}?lang=${lang}`);
    await ready();
    await hydrated(page);
    await fits(page);
    await screenshot(page, `${name}-${lang}`);
  }
}

/** Person 21's reception on `srv`'s online-care link, up to the done screen's offer. */
async function toOffer(srv, page) {
  await toReview(srv, page, 'online_care', { clinical: 'yes', checkups: 'no' });
  await signWithPracticeCard(page, UNREGISTERED, demoPin(UNREGISTERED));
  await waitDone(page);
  // The done screen waits for the eligibility that follows the registration: the offer is
  // there on its one showing, no reload needed.
  const offer = page.getByTestId('insurance-offer');
  await offer.waitFor({ timeout: 1_000 });
  return offer;
}

/** The insurance-use page, consent given, the practice card of `person` and its PIN sent. */
async function registerWith(page, person) {
  await hydrated(page);
  assert.equal(await page.getByTestId('insurance-card').count(), 0, 'the card step waits for consent');
  await page.getByTestId('insurance-consent').check();
  await page.getByTestId('insurance-card').waitFor();
  // Registration needs the PIN: no visual check is offered.
  assert.equal(await page.getByTestId('method-visual').count(), 0);
  await page.getByTestId('demo-person').selectOption(String(person));
  await page.getByTestId('use-practice').click();
  await page.getByTestId('pin').waitFor({ timeout: 30_000 });
  await page.getByTestId('pin').fill(demoPin(person));
  await page.getByTestId('send').click();
}

describe('健康保険証利用登録', () => {
  test('person 21 registers the card from the done screen and eligibility is then found', async () => {
    const { context, page, problems } = await phonePage(browser, { viewport: SMALL_PHONE });
    const link = server.links.online_care;
    const done = `${server.base}/r/${link}/done`;
    const terms = `${server.base}/r/${link}/insurance-use`;

    const offer = await toOffer(server, page);
    const words = await offer.textContent();
    assert.match(words, /このカードを健康保険証として利用登録する/);
    assert.match(words, /窓口で保険証/);
    assert.doesNotMatch(await page.textContent('main'), /マイナポータル/);
    assert.equal(await page.getByTestId('eligibility-problem').count(), 0);
    await hydrated(page);
    await assertNoAxeViolations(page, 'done with the offer');
    await bothLanguages(page, done, 'insurance-1-offer', () => offer.waitFor());
    assert.match(await offer.textContent(), /Register this card as my health insurance card/);
    await page.goto(`${done}?lang=ja`);

    // The terms in plain words, then consent.
    await page.getByTestId('insurance-offer-button').click();
    await page.waitForURL(/\/insurance-use$/);
    const termsBox = page.getByTestId('insurance-terms');
    await termsBox.waitFor();
    const text = await termsBox.textContent();
    for (const point of [/健康保険証として使えるようになります/, /薬局/, /この医療機関を通じて/, /無料/, /変わりません/, /2026-12/]) {
      assert.match(text, point);
    }
    await hydrated(page);
    await assertNoAxeViolations(page, 'terms');
    await bothLanguages(page, terms, 'insurance-2-terms', () => termsBox.waitFor());
    assert.match(await termsBox.textContent(), /free/);
    await page.goto(`${terms}?lang=ja`);

    // Another person's card is not the reception's: refused on the card step, in words.
    await registerWith(page, OTHER);
    const error = page.getByTestId('card-error');
    await error.getByText(/この受付に使ったカードではありません/).waitFor({ timeout: 30_000 });
    await screenshot(page, 'insurance-2-terms-card-mismatch-ja');

    // The patient's own card.
    await page.goto(terms);
    await termsBox.waitFor();
    await registerWith(page, UNREGISTERED);
    await page.waitForURL(/\/done$/, { timeout: 30_000 });
    const registered = page.getByTestId('insurance-registered');
    await registered.waitFor({ timeout: 30_000 });
    assert.match(await registered.textContent(), /健康保険証として利用登録しました/);
    assert.match(await registered.textContent(), /保険の資格を確認できました/);
    assert.equal(await page.getByTestId('insurance-offer').count(), 0);
    assert.equal(await page.getByTestId('eligibility-problem').count(), 0);
    await hydrated(page);
    await assertNoAxeViolations(page, 'registered');
    await bothLanguages(page, done, 'insurance-3-registered', () => registered.waitFor());
    assert.match(await registered.textContent(), /now registered as your health insurance card/);

    // Nothing more to offer.
    await page.goto(terms);
    await page.getByTestId('insurance-not-offered').waitFor();
    // The one refusal on the way (another person's card) is the browser's only complaint.
    assert.deepEqual(problems.filter((p) => !/status of 422/.test(p)), []);
    await context.close();
  });

  test('the card-reading app signs the registration text and the page sends it; the PIN is in no request', async () => {
    // A server of its own: person 21 is still unregistered there.
    const own = await startServer();
    try {
      const { context, page, problems } = await phonePage(browser, { viewport: SMALL_PHONE });
      const seen = [];
      page.on('request', (request) => {
        seen.push([request.url(), request.postData() ?? ''].join('\n'));
      });
      await toOffer(own, page);
      await page.getByTestId('insurance-offer-button').click();
      await page.waitForURL(/\/insurance-use$/);
      await hydrated(page);
      await page.getByTestId('insurance-consent').check();
      await page.getByTestId('use-app').click();
      await page.waitForURL(/\/eid-app#/);
      // The app shows what it signs: the registration, at this institution, for this site.
      await page.getByTestId('app-insurance-use').waitFor();
      assert.equal(await page.getByTestId('app-terms').textContent(), '2026-12');
      assert.equal(await page.getByTestId('app-origin').textContent(), new URL(own.base).origin);
      await assertNoAxeViolations(page, 'practice app, registration');
      await screenshot(page, 'insurance-4-app-ja');
      await page.getByTestId('demo-person').selectOption(String(UNREGISTERED));
      await page.getByTestId('pin').fill(demoPin(UNREGISTERED));
      await page.getByTestId('app-sign').click();
      await page.waitForURL(/\/done$/, { timeout: 30_000 });
      await page.getByTestId('insurance-registered').waitFor({ timeout: 30_000 });
      assert.ok(seen.some((r) => r.includes('/insurance-use#') || r.includes('/api/session/insurance-use\n')),
        'the result came back to the registration page and was sent');
      const withPin = seen.filter((r) => r.includes(demoPin(UNREGISTERED)) && !r.includes('/eid-app'));
      assert.deepEqual(withPin, [], 'no request carries the PIN');
      assert.deepEqual(problems, []);
      await context.close();
    } finally {
      await own.stop();
    }
  });
});
