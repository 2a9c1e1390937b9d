// The staff member's side as the browser suites take it: a ward-laptop-sized context with
// Chromium's virtual authenticator (CDP WebAuthn) holding passkeys, and the demo sign-in that
// enrols a passkey for one of the demo accounts.

import assert from 'node:assert/strict';
import { assertNoAxeViolations } from './patient.mjs';
import { screenshot } from './harness.mjs';

export const LAPTOP = { width: 1366, height: 800 };

/** A laptop-sized context with a platform authenticator that holds passkeys and verifies the user. */
export async function staffPage(browser) {
  const context = await browser.newContext({ viewport: LAPTOP, locale: 'ja-JP' });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !/status of 40[13]/.test(msg.text())) problems.push(`console: ${msg.text()}`);
  });
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { context, page, problems };
}

/** Demo sign-in screen → register a passkey for `account` → signed in on the list. */
export async function enrolAndSignIn(server, page, account, { check = false } = {}) {
  await page.goto(`${server.base}/console`);
  await page.waitForURL(/\/console\/signin\?next=/);
  if (check) {
    await assertNoAxeViolations(page, 'console sign-in');
    await screenshot(page, 'console-1-signin');
  }
  await page.locator(`[data-demo-enrol="${account}"]`).click();
  await page.waitForURL(/\/console\/enrol$/);
  await page.locator('#enrol').waitFor({ state: 'visible' });
  assert.match(await page.getByTestId('enrol-account').textContent(), new RegExp(`\\(${account}\\)`));
  if (check) {
    await assertNoAxeViolations(page, 'console enrolment');
    await screenshot(page, 'console-2-enrol');
  }
  await page.locator('#enrol').click();
  await page.waitForURL(`${server.base}/console`);
  await page.getByTestId('who').waitFor();
}
