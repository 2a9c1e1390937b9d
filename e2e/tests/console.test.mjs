// The institution console in Chromium on a ward-laptop-sized screen: passkeys through Chromium's
// virtual authenticator (CDP WebAuthn), a patient's reception appearing live in the console of
// another browser context, medical information for the medical viewer only and only inside the
// window (then the demo clock is moved two days on), the print sheet, and axe-core on every
// console screen.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, phonePage, screenshot, startServer } from './harness.mjs';
import { assertNoAxeViolations, signWithPracticeCard, toReview, waitDone } from './patient.mjs';
import { enrolAndSignIn as enrol, staffPage as laptop } from './staff.mjs';

let server;
let browser;
const staffPage = () => laptop(browser);
const enrolAndSignIn = (page, account, options) => enrol(server, page, account, options);

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const status = (page, path) => page.evaluate(async (url) => (await fetch(url)).status, path);

describe('institution console', () => {
  test('passkeys, live receptions, medical information by role and window, every screen accessible', async () => {
    // A doctor (医療情報閲覧) signs in with a passkey and keeps the day's list open.
    const doctor = await staffPage();
    await enrolAndSignIn(doctor.page, 'doctor', { check: true });
    assert.match(await doctor.page.getByTestId('who').textContent(), /デモ 医師/);
    await assertNoAxeViolations(doctor.page, 'console receptions (empty)');
    await screenshot(doctor.page, 'console-3-list-empty');

    // A patient registers on their phone in another context …
    const patient = await phonePage(browser);
    await toReview(server, patient.page, 'separate_route', { clinical: 'yes', checkups: 'no' });
    await signWithPracticeCard(patient.page, 1, '1234');
    await waitDone(patient.page);
    const number = (await patient.page.getByTestId('reception-number').textContent()).trim();
    assert.deepEqual(patient.problems, []);
    await patient.context.close();

    // … and the reception appears in the open list without a reload, with the name once the
    // eligibility is in.
    const row = doctor.page.locator('#receptions tr[data-reception]', { hasText: number });
    await row.waitFor({ timeout: 20_000 });
    await row.locator('.status-confirmed').waitFor({ timeout: 20_000 });
    await doctor.page.waitForFunction(
      (n) => [...document.querySelectorAll('#receptions tr')].some((tr) => tr.textContent.includes(n) && !tr.textContent.includes('確認中')),
      number,
      { timeout: 20_000 },
    );
    await assertNoAxeViolations(doctor.page, 'console receptions');
    await screenshot(doctor.page, 'console-4-list-live');

    // The detail: eligibility, and the consented tab's medical information inside the window.
    await row.locator('a').first().click();
    await doctor.page.getByTestId('patient-name').waitFor();
    const detailUrl = doctor.page.url();
    await assertNoAxeViolations(doctor.page, 'console reception detail');
    await screenshot(doctor.page, 'console-5-detail');
    await doctor.page.getByRole('link', { name: '診療・薬剤情報' }).click();
    await doctor.page.getByTestId('clinical').waitFor();
    await assertNoAxeViolations(doctor.page, 'console medical information');
    await screenshot(doctor.page, 'console-6-medical');
    assert.equal(await doctor.page.getByRole('link', { name: '特定健診等情報' }).count(), 0, 'no tab without consent');

    // A general user (一般利用者) sees eligibility, no medical tabs, and a direct request is refused.
    const general = await staffPage();
    await enrolAndSignIn(general.page, 'staff');
    await general.page.goto(`${detailUrl}?tab=clinical_medication`);
    await general.page.getByTestId('medical-role-note').waitFor();
    assert.equal(await general.page.getByTestId('clinical').count(), 0);
    const id = detailUrl.split('/').pop();
    assert.equal(await status(general.page, `/api/console/receptions/${id}/medical/clinical_medication`), 403);
    assert.equal(await status(general.page, `/api/console/receptions/${id}`), 200);
    await assertNoAxeViolations(general.page, 'console detail as a general user');
    assert.deepEqual(general.problems, []);
    await general.context.close();

    // An administrator: links, the print sheet, settings, accounts, audit log.
    const admin = await staffPage();
    await enrolAndSignIn(admin.page, 'admin');
    for (const [path, name] of [
      ['/console/links', 'links'],
      ['/console/settings', 'settings'],
      ['/console/accounts', 'accounts'],
      ['/console/audit', 'audit'],
    ]) {
      await admin.page.goto(`${server.base}${path}`);
      await admin.page.locator('main h1').waitFor();
      await assertNoAxeViolations(admin.page, `console ${name}`);
      await screenshot(admin.page, `console-7-${name}`);
    }
    assert.match(await admin.page.getByTestId('audit').textContent(), /medical\.view/);
    // 目視確認's roles are a setting: tick 一般利用者 on the settings screen, and the API says so.
    await admin.page.goto(`${server.base}/console/settings`);
    const roles = admin.page.getByTestId('visual-check-roles');
    assert.equal(await roles.locator('input[value="general"]').isChecked(), false);
    assert.equal(await roles.locator('input[value="medical_viewer"]').isChecked(), true);
    await roles.locator('input[value="general"]').check();
    // The form reloads the page once saved.
    const reloaded = admin.page.waitForEvent('load');
    await admin.page.locator('form[data-api="/api/console/settings"] button[type=submit]').click();
    await reloaded;
    await admin.page.getByTestId('visual-check-roles').locator('input[value="general"]:checked').waitFor();
    const saved = await admin.page.evaluate(async () =>
      (await (await fetch('/api/console/settings')).json()).visual_check_roles);
    assert.deepEqual([...saved].sort(), ['administrator', 'general', 'medical_viewer']);
    await admin.page.goto(`${server.base}/console/links`);
    // A per-appointment link more than 90 days ahead is refused, in words (no patient could
    // use it until 90 days before the visit).
    const create = admin.page.locator('form[data-api="/api/console/links"]');
    await create.locator('select[name=kind]').selectOption('online_care');
    await create.locator('input[name=visit_date]').fill(new Date(Date.now() + 120 * 86_400_000).toISOString().slice(0, 10));
    await create.locator('button[type=submit]').click();
    await create.locator('.form-message').filter({ hasText: '90日' }).waitFor();
    assert.match(await create.locator('.form-message').textContent(), /visit_date_too_far/);
    // The browser logs the refusal's 422 as a failed resource: expected here, and only here.
    const refusal = admin.problems.findIndex((p) => /status of 422/.test(p));
    assert.notEqual(refusal, -1, 'the 422 was logged');
    admin.problems.splice(refusal, 1);
    await admin.page.locator('a[href$="/sheet"]').first().click();
    await admin.page.getByTestId('sheet-url').waitFor();
    assert.match(await admin.page.getByTestId('snippet').inputValue(), /data:image\/svg\+xml;base64,/);
    await assertNoAxeViolations(admin.page, 'console print sheet');
    await admin.page.emulateMedia({ media: 'print' });
    await screenshot(admin.page, 'console-8-print-sheet');
    await admin.page.emulateMedia({ media: 'screen' });
    await admin.page.goto(`${server.base}/console?lang=en`);
    await admin.page.getByRole('heading', { name: "Today's receptions" }).waitFor();
    await assertNoAxeViolations(admin.page, 'console receptions in English');
    await screenshot(admin.page, 'console-9-list-en');

    // Two days on (the demo clock), the window has closed: the doctor signs in again with the
    // passkey and is refused the same tab.
    const moved = await admin.page.evaluate(async () => {
      const response = await fetch('/api/console/demo/clock', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-uketsuke-csrf': '1' },
        body: JSON.stringify({ advance_hours: 48 }),
      });
      return response.status;
    });
    assert.equal(moved, 200);
    await doctor.page.goto(`${detailUrl}?tab=clinical_medication`);
    await doctor.page.waitForURL(/\/console\/signin\?next=/);
    await doctor.page.locator('#signin').click();
    await doctor.page.waitForURL(/\?tab=clinical_medication$/);
    await doctor.page.getByTestId('medical-refused').waitFor();
    assert.match(await doctor.page.getByTestId('medical-refused').textContent(), /window_closed/);
    assert.equal(await doctor.page.getByTestId('clinical').count(), 0);
    assert.equal(await status(doctor.page, `/api/console/receptions/${id}/medical/clinical_medication`), 403);
    await screenshot(doctor.page, 'console-10-window-closed');

    assert.deepEqual(doctor.problems, []);
    assert.deepEqual(admin.problems, []);
    await doctor.context.close();
    await admin.context.close();
  });

  test('on the ward laptop a signed-in staff member registers a patient by visual check', async () => {
    const staff = await staffPage();
    // 目視確認 is for 医療情報閲覧 and 管理者 unless an administrator allows 一般利用者 (issue 12).
    await enrolAndSignIn(staff.page, 'doctor');

    // Online care never offers the visual check, even with staff signed in.
    await toReview(server, staff.page, 'online_care');
    await staff.page.getByTestId('to-card').click();
    await staff.page.waitForURL(/\/card$/);
    await staff.page.getByTestId('use-practice').waitFor();
    await staff.page.getByTestId('staff-on-device').waitFor();
    assert.equal(await staff.page.getByTestId('method').count(), 0);

    // A house call: the staff member chooses 目視確認, reads the practice card without a PIN and
    // confirms the face.
    await toReview(server, staff.page, 'house_call');
    await staff.page.getByTestId('to-card').click();
    await staff.page.waitForURL(/\/card$/);
    await staff.page.getByTestId('method-visual').check();
    await staff.page.getByTestId('demo-person').selectOption('4');
    await assertNoAxeViolations(staff.page, 'card step with visual check');
    await screenshot(staff.page, 'flow-visual-1-method');
    await staff.page.getByTestId('use-practice').click();
    await staff.page.getByTestId('visual-send').waitFor({ timeout: 30_000 });
    assert.equal(await staff.page.getByTestId('pin').count(), 0, 'no PIN pad in a visual check');
    // Sending without ticking the box is refused on the page; nothing is sent.
    await staff.page.getByTestId('face-matches').evaluate((box) => box.removeAttribute('required'));
    await staff.page.getByTestId('visual-send').click();
    await staff.page.getByTestId('card-error').filter({ hasText: '顔写真' }).waitFor();
    await staff.page.getByTestId('face-matches').check();
    await assertNoAxeViolations(staff.page, 'visual check confirmation');
    await screenshot(staff.page, 'flow-visual-2-confirm');
    await staff.page.getByTestId('visual-send').click();
    await waitDone(staff.page);
    const refusal = staff.page.getByTestId('refusal');
    assert.equal(await refusal.count(), 0, await refusal.textContent().catch(() => ''));
    const number = (await staff.page.getByTestId('reception-number').textContent()).trim();
    assert.equal(await staff.page.getByTestId('photo-id').count(), 0, 'no photo-ID step at the institution');
    await screenshot(staff.page, 'flow-visual-3-done');

    // The console records who confirmed the face.
    await staff.page.goto(`${server.base}/console`);
    const row = staff.page.locator('#receptions tr[data-reception]', { hasText: number });
    await row.waitFor({ timeout: 20_000 });
    await row.locator('a').first().click();
    await staff.page.getByTestId('patient-name').waitFor();
    assert.match(await staff.page.locator('main').textContent(), /目視確認 \(doctor\)/);

    // The same screens in English.
    await staff.page.goto(`${server.base}/r/${server.links.device_failure}?lang=en`);
    await toReview(server, staff.page, 'device_failure');
    await staff.page.getByTestId('to-card').click();
    await staff.page.waitForURL(/\/card$/);
    await staff.page.getByTestId('method-visual').check();
    await staff.page.getByText('This is an institution device. Staff member: デモ 医師 (doctor)').waitFor();
    await screenshot(staff.page, 'flow-visual-en-1-method');
    await staff.page.getByTestId('use-practice').click();
    await staff.page.getByTestId('visual-send').waitFor({ timeout: 30_000 });
    await screenshot(staff.page, 'flow-visual-en-2-confirm');
    assert.deepEqual(staff.problems, []);
    await staff.context.close();
  });
});
