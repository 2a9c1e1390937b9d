// The patient's steps as the browser suites take them: landing to review with given choices,
// the practice card and PIN, the done screen; and the axe-core check every screen must pass.

import assert from 'node:assert/strict';
import AxeBuilder from '@axe-core/playwright';
import { hydrated, screenshot } from './harness.mjs';

export async function assertNoAxeViolations(page, what) {
  const result = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21aa', 'wcag22aa']).analyze();
  const summary = result.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target).join(', ')}`);
  assert.deepEqual(summary, [], `axe-core violations on ${what}`);
}

/** Landing → consent (→ date for online care) → review, answering with the given choices. */
export async function toReview(server, page, kind, { clinical = 'yes', checkups = 'no', shots = null } = {}) {
  await page.goto(`${server.base}/r/${server.links[kind]}`);
  if (shots) await screenshot(page, `flow-${shots}-1-landing`);
  await page.getByTestId('start').click();
  if (kind === 'online_care') {
    await page.waitForURL(/\/date$/);
    if (shots) {
      await screenshot(page, `flow-${shots}-2-date`);
      await assertNoAxeViolations(page, 'date');
    }
    await page.locator('form button[type=submit]').click();
  }
  await page.waitForURL(/\/consent/);
  if (shots) {
    await screenshot(page, `flow-${shots}-3-consent`);
    await assertNoAxeViolations(page, 'consent');
  }
  if (kind !== 'eligibility_only') {
    await page.locator(`input[name=clinical_medication][value=${clinical}]`).check();
    await page.locator(`input[name=checkups][value=${checkups}]`).check();
  }
  if (kind === 'online_care') await page.locator('input[name=prescription_method][value=electronic]').check();
  await page.locator('form button[type=submit]').click();
  await page.waitForURL(/\/review$/);
  if (shots) {
    await screenshot(page, `flow-${shots}-4-review`);
    await assertNoAxeViolations(page, 'review');
  }
}

/** Review → the card step, its island running. */
export async function toCardStep(page) {
  await page.getByTestId('to-card').click();
  await page.waitForURL(/\/card$/);
  await hydrated(page);
}

/** Review → card → practice card of `person` → PIN → done (or an error on the card step). */
export async function signWithPracticeCard(page, person, pin, { shots = null } = {}) {
  await toCardStep(page);
  await page.getByTestId('demo-person').selectOption(String(person));
  if (shots) {
    await screenshot(page, `flow-${shots}-5-card`);
    await assertNoAxeViolations(page, 'card');
  }
  await page.getByTestId('use-practice').click();
  await page.getByTestId('pin').waitFor({ timeout: 30_000 });
  if (shots) {
    await screenshot(page, `flow-${shots}-6-pin`);
    await assertNoAxeViolations(page, 'pin');
  }
  await page.getByTestId('pin').fill(pin);
  await page.getByTestId('send').click();
}

export async function waitDone(page) {
  await page.waitForURL(/\/done$/, { timeout: 30_000 });
  await page.getByTestId('reception-number').or(page.getByTestId('refusal')).waitFor({ timeout: 30_000 });
}

