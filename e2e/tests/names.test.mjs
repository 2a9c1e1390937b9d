// Names as the registry holds them (外字 髙 and 﨑, 𠮷 and 𩸽 outside the BMP, 辻 and 葛 with a
// variation selector) registered by patients with the practice card, then read by a staff
// member: the console's list and detail show each name with real glyphs of the console's
// fonts (no tofu box, no visible selector), in Japanese and English, with screenshots.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, phonePage, screenshot, startServer } from './harness.mjs';
import { signWithPracticeCard, toReview, waitDone } from './patient.mjs';
import { enrolAndSignIn, staffPage } from './staff.mjs';

// The simulator's people with these names (backend/src/simulator/population.rs, VARIANT_NAMES).
const PEOPLE = [
  { no: 35, name: '髙﨑 はな' },
  { no: 36, name: '𠮷田 𩸽太郎' },
  { no: 37, name: '辻\u{E0100} 葛\u{E0100}子' },
];
const demoPin = (no) => String((1234 + no * 1111) % 10_000).padStart(4, '0');

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

/**
 * For each ideograph of `selector`'s text: does the element's own font stack draw it with a
 * glyph, rather than the box every missing character gets? A missing character is drawn like
 * an unassigned code point (U+0378); a variation selector adds no advance of its own.
 */
async function glyphReport(page, selector) {
  return page.locator(selector).first().evaluate((el) => {
    const family = getComputedStyle(el).fontFamily;
    const canvas = document.createElement('canvas');
    canvas.width = 96;
    canvas.height = 96;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.font = `64px ${family}`;
    const pixels = (text) => {
      ctx.clearRect(0, 0, 96, 96);
      ctx.fillText(text, 8, 72);
      return Array.from(ctx.getImageData(0, 0, 96, 96).data).join(',');
    };
    const missing = pixels('\u0378');
    const report = [];
    const chars = [...el.textContent.trim()];
    chars.forEach((c, i) => {
      const cp = c.codePointAt(0);
      if (cp >= 0xe0100 && cp <= 0xe01ef) {
        const base = chars[i - 1];
        const extra = ctx.measureText(base + c).width - ctx.measureText(base).width;
        report.push({ char: `U+${cp.toString(16).toUpperCase()}`, drawn: Math.abs(extra) < 0.5 });
      } else if (/\p{Script=Han}/u.test(c)) {
        report.push({ char: c, drawn: pixels(c) !== missing });
      }
    });
    return report;
  });
}

describe('names with 外字 and variation sequences', () => {
  test('reach the console intact and are drawn with real glyphs', async () => {
    const numbers = [];
    for (const person of PEOPLE) {
      const patient = await phonePage(browser);
      await toReview(server, patient.page, 'separate_route', { clinical: 'yes', checkups: 'no' });
      await signWithPracticeCard(patient.page, person.no, demoPin(person.no));
      await waitDone(patient.page);
      assert.equal(await patient.page.getByTestId('refusal').count(), 0, `person ${person.no} refused`);
      numbers.push((await patient.page.getByTestId('reception-number').textContent()).trim());
      assert.deepEqual(patient.problems, []);
      await patient.context.close();
    }

    const staff = await staffPage(browser);
    await enrolAndSignIn(server, staff.page, 'staff');
    for (const [i, person] of PEOPLE.entries()) {
      const row = staff.page.locator('#receptions tr[data-reception]', { hasText: numbers[i] });
      await row.waitFor({ timeout: 20_000 });
      await staff.page.waitForFunction(
        ({ n, name }) => [...document.querySelectorAll('#receptions tr')].some((tr) => tr.textContent.includes(n) && tr.textContent.includes(name)),
        { n: numbers[i], name: person.name },
        { timeout: 20_000 },
      );
    }
    await screenshot(staff.page, 'console-names-1-list');

    for (const [i, person] of PEOPLE.entries()) {
      await staff.page.goto(`${server.base}/console`);
      await staff.page.locator('#receptions tr[data-reception]', { hasText: numbers[i] }).locator('a').first().click();
      const name = staff.page.getByTestId('patient-name');
      await name.waitFor();
      assert.equal((await name.textContent()).trim(), person.name, `person ${person.no}: code points kept`);
      const report = await glyphReport(staff.page, '[data-testid=patient-name]');
      const checked = [...person.name].filter((c) => /\p{Script=Han}/u.test(c) || /[\u{E0100}-\u{E01EF}]/u.test(c));
      assert.equal(report.length, checked.length, JSON.stringify(report));
      assert.deepEqual(report.filter((r) => !r.drawn), [], `person ${person.no}: every character drawn`);
      await screenshot(staff.page, `console-names-${i + 2}-detail`);
      await staff.page.goto(`${staff.page.url()}?lang=en`);
      await name.waitFor();
      assert.equal((await name.textContent()).trim(), person.name);
      await screenshot(staff.page, `console-names-${i + 2}-detail-en`);
    }
    assert.deepEqual(staff.problems, []);
    await staff.context.close();
  });
});
