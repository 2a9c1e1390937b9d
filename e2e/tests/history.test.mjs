// 閲覧履歴 (issue 15 §1) in the browser: a patient registers on their phone, the done screen
// says where the history is; a doctor reads the reception on the ward laptop; later the
// patient proves their card on 同意照会 and sees each read (when, what, role and staff ID),
// in Japanese and English, at phone size.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hydrated, launchBrowser, phonePage, screenshot, startServer } from './harness.mjs';
import { assertNoAxeViolations, signWithPracticeCard, toReview, waitDone } from './patient.mjs';
import { enrolAndSignIn, staffPage } from './staff.mjs';

const PERSON = 1;
// The simulator's rule (backend/src/simulator/population.rs, pin_of): person 1 has 1234.
const demoPin = (no) => (no === 1 ? '1234' : String((1234 + no * 1111) % 10_000).padStart(4, '0'));

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

async function proveOnManage(page, link) {
  await page.goto(`${server.base}/r/${link}/manage`);
  await page.getByTestId('manage-start').click();
  await page.waitForURL(/\/manage$/);
  await hydrated(page);
  await page.getByTestId('demo-person').selectOption(String(PERSON));
  await page.getByTestId('use-practice').click();
  await page.getByTestId('pin').waitFor({ timeout: 30_000 });
  await page.getByTestId('pin').fill(demoPin(PERSON));
  await page.getByTestId('send').click();
  await page.getByTestId('managed').waitFor({ timeout: 30_000 });
}

describe('閲覧履歴', () => {
  test('the patient sees who read what, and the done and cancel pages say where', async () => {
    // The patient registers for online care, consenting to both categories.
    let patient = await phonePage(browser);
    await toReview(server, patient.page, 'online_care', { clinical: 'yes', checkups: 'yes' });
    await signWithPracticeCard(patient.page, PERSON, demoPin(PERSON));
    await waitDone(patient.page);
    const number = (await patient.page.getByTestId('reception-number').textContent()).trim();
    const where = patient.page.getByTestId('reads-where');
    assert.match(await where.textContent(), /同意の確認・変更・取り消し/);
    assert.match(await where.getByTestId('reads-where-link').getAttribute('href'), /\/manage$/);
    await hydrated(patient.page);
    await assertNoAxeViolations(patient.page, 'done with the history note');
    await screenshot(patient.page, 'history-1-done');
    const cancel = await patient.page.getByTestId('cancel-link').getAttribute('href');
    await patient.page.goto(`${server.base}${cancel}`);
    await patient.page.getByTestId('cancel-button').waitFor();
    assert.match(
      await patient.page.getByTestId('reads-where-link').getAttribute('href'),
      new RegExp(`/r/${server.links.online_care}/manage$`),
    );
    await screenshot(patient.page, 'history-2-cancel');
    await patient.context.close();

    // The doctor opens the reception and its 診療・薬剤情報 on the ward laptop.
    const staff = await staffPage(browser);
    await enrolAndSignIn(server, staff.page, 'doctor');
    const row = staff.page.locator('#receptions tr[data-reception]', { hasText: number });
    await row.waitFor({ timeout: 20_000 });
    // The eligibility arrives just after the reception: the detail must show it.
    await staff.page.waitForFunction((n) => [...document.querySelectorAll('#receptions tr')]
      .some((tr) => tr.textContent.includes(n) && !tr.textContent.includes('（確認中）')), number, { timeout: 20_000 });
    await row.locator('a').first().click();
    await staff.page.getByTestId('detail-title').waitFor();
    await staff.page.goto(`${staff.page.url()}?tab=clinical_medication`);
    await staff.page.getByTestId('detail-title').waitFor();
    assert.deepEqual(staff.problems, []);
    await staff.context.close();

    // Later, in a new browser session, the patient proves their card on 同意照会.
    patient = await phonePage(browser);
    await proveOnManage(patient.page, server.links.online_care);
    const reads = patient.page.getByTestId('read');
    // The detail page showed the eligibility, then the tab showed it again with the clinical
    // information: three reads, oldest first, each by 医療情報閲覧 (doctor).
    assert.equal(await reads.count(), 3);
    const lines = await reads.allTextContents();
    assert.match(lines[0], /資格情報 · 医療情報閲覧（職員ID doctor）/);
    assert.match(lines[1], /資格情報 · 医療情報閲覧（職員ID doctor）/);
    assert.match(lines[2], /診療・薬剤情報 · 医療情報閲覧（職員ID doctor）/);
    for (const line of lines) assert.match(line, /\d{4}年\d{1,2}月\d{1,2}日 \d{2}時\d{2}分（日本時間）/);
    assert.ok(!lines.join('').includes('デモ 医師'), 'the staff member is never named');
    await assertNoAxeViolations(patient.page, 'manage with the read history');
    assert.ok(await patient.page.evaluate(() => document.documentElement.scrollWidth <= 390), 'fits the phone');
    await screenshot(patient.page, 'history-3-manage');

    // The same in English.
    await patient.page.goto(`${server.base}/r/${server.links.online_care}/manage?lang=en`);
    await hydrated(patient.page);
    // A page load keeps the session's proof for 5 minutes; if the list is not shown, prove again.
    if (!(await patient.page.getByTestId('managed').isVisible().catch(() => false))) {
      await patient.page.getByTestId('demo-person').selectOption(String(PERSON));
      await patient.page.getByTestId('use-practice').click();
      await patient.page.getByTestId('pin').waitFor({ timeout: 30_000 });
      await patient.page.getByTestId('pin').fill(demoPin(PERSON));
      await patient.page.getByTestId('send').click();
      await patient.page.getByTestId('managed').waitFor({ timeout: 30_000 });
    }
    const english = await patient.page.getByTestId('read').allTextContents();
    assert.equal(english.length, 3);
    assert.match(english[2], /Medical and medication history · Medical information viewer \(staff ID doctor\)/);
    assert.match(english[2], /\d{1,2} \w+ \d{4}, \d{2}:\d{2} \(Japan time\)/);
    await screenshot(patient.page, 'history-4-manage-en');
    assert.deepEqual(patient.problems, []);
    await patient.context.close();
  });
});
