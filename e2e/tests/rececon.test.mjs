// レセコン連携 (issue 15 §3) in the browser at laptop size: a patient whose name has characters
// outside cp932 registers; the staff member checks the day's export in cp932, sees each
// character listed with its code points and the stand-in, downloads the file and the report,
// and uploads 照会番号 in bulk with a result per row — in Japanese and English.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, phonePage, screenshot, startServer } from './harness.mjs';
import { assertNoAxeViolations, signWithPracticeCard, toReview, waitDone } from './patient.mjs';
import { enrolAndSignIn, staffPage } from './staff.mjs';

// 𠮷田 𩸽太郎 (backend/src/simulator/population.rs, VARIANT_NAMES) and person 1 (the practice card offers both).
const PEOPLE = [36, 1];
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

describe('レセコン連携', () => {
  test('cp932 export lists what it replaces; 照会番号 upload answers per row', async () => {
    const numbers = [];
    for (const no of PEOPLE) {
      const patient = await phonePage(browser);
      await toReview(server, patient.page, 'separate_route', { clinical: 'yes', checkups: 'no' });
      await signWithPracticeCard(patient.page, no, demoPin(no));
      await waitDone(patient.page);
      numbers.push((await patient.page.getByTestId('reception-number').textContent()).trim());
      await patient.context.close();
    }

    const staff = await staffPage(browser);
    await enrolAndSignIn(server, staff.page, 'staff');
    for (const n of numbers) {
      await staff.page.locator('#receptions tr[data-reception]', { hasText: n }).waitFor({ timeout: 20_000 });
    }
    // The list's eligibility arrives shortly after the row: wait for both names.
    await staff.page.waitForFunction(() => {
      const text = document.querySelector('#receptions')?.textContent ?? '';
      return text.includes('𠮷田') && !text.includes('（確認中）');
    }, null, { timeout: 20_000 });
    await staff.page.getByTestId('to-export').click();
    await staff.page.waitForURL(/\/console\/export\?/);
    await staff.page.getByTestId('encoding-cp932').check();
    await staff.page.getByTestId('export-check').click();
    await staff.page.waitForURL(/encoding=cp932/);
    const listed = staff.page.getByTestId('unrepresentable');
    assert.equal(await listed.count(), 2);
    const first = await listed.nth(0).innerText();
    assert.match(first, /𠮷/);
    assert.match(first, /U\+20BB7/);
    assert.match(first, /〓/);
    assert.match(await listed.nth(1).innerText(), /U\+29E3D/);
    assert.match(await staff.page.getByTestId('export-count').textContent(), /2件/);
    await assertNoAxeViolations(staff.page, 'export check');
    await screenshot(staff.page, 'rececon-1-check');

    // The file: cp932 bytes, the stand-in where 𠮷 and 𩸽 were.
    const [download] = await Promise.all([
      staff.page.waitForEvent('download'),
      staff.page.getByTestId('export-download').click(),
    ]);
    assert.match(download.suggestedFilename(), /^receptions-\d{4}-\d{2}-\d{2}-cp932\.csv$/);
    const bytes = await (await download.createReadStream()).toArray();
    const text = new TextDecoder('shift_jis').decode(Buffer.concat(bytes));
    assert.match(text, /〓田 〓太郎/);
    assert.ok(!text.includes('𠮷'));
    const [report] = await Promise.all([
      staff.page.waitForEvent('download'),
      staff.page.getByTestId('report-download').click(),
    ]);
    const reportText = Buffer.concat(await (await report.createReadStream()).toArray()).toString('utf8');
    assert.match(reportText, /𠮷,U\+20BB7,〓/);

    // Bulk 照会番号 (no header row: two columns each): one good row, one unknown reception, one
    // with a third column.
    const csv = `${numbers[0]},K-0036\r\n99999999,K-9\r\n${numbers[1]},K-0047,extra\r\n`;
    await staff.page.getByTestId('upload-file').setInputFiles({ name: 'refs.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    await staff.page.getByTestId('upload-form').locator('button[type=submit]').click();
    await staff.page.getByTestId('upload-summary').waitFor();
    assert.match(await staff.page.getByTestId('upload-summary').textContent(), /登録 1件・変更なし 0件・登録できない行 2件/);
    const rows = staff.page.getByTestId('upload-row');
    assert.equal(await rows.count(), 3);
    assert.equal(await rows.nth(0).getAttribute('data-result'), 'applied');
    assert.match(await rows.nth(1).textContent(), /この医療機関にその受付はありません/);
    assert.match(await rows.nth(2).textContent(), /列の数が違います/);
    await assertNoAxeViolations(staff.page, 'upload result');
    await screenshot(staff.page, 'rececon-2-upload');

    // English.
    await staff.page.goto(`${staff.page.url()}&lang=en`);
    await staff.page.getByTestId('unrepresentable').first().waitFor();
    assert.match(await staff.page.locator('h1').textContent(), /Export for the レセコン/);
    await staff.page.getByTestId('upload-file').setInputFiles({ name: 'refs.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    await staff.page.getByTestId('upload-form').locator('button[type=submit]').click();
    await staff.page.getByTestId('upload-summary').waitFor();
    assert.match(await staff.page.getByTestId('upload-summary').textContent(), /0 applied, 1 unchanged, 2 refused/);
    await screenshot(staff.page, 'rececon-3-en');
    assert.deepEqual(staff.problems, []);
    await staff.context.close();
  });
});
