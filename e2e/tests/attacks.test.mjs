// Attacks of issue 12 performed in the browser. Section 1, a relaying (phishing) site: the
// attacker opens a real reception link in its own browser session, takes the card-reading
// app's request (the challenge and the exact text to sign, which names the real origin) and
// sends the patient from its own page, on another origin, to the app with its own origin and
// return address. The practice app plays the card-reading app: it must refuse, show why, and
// never open the attacker's address. The attacker's page is a tiny HTTP server on another
// loopback port (the real server's origin is `http://localhost:PORT`, the attacker's
// `http://127.0.0.1:OTHER`); it records every request it gets.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { hydrated, launchBrowser, phonePage, screenshot, startServer } from './harness.mjs';
import { toCardStep, toReview } from './patient.mjs';

let server;
let browser;
let attacker;

const b64url = (text) => Buffer.from(text).toString('base64url');
const unb64url = (text) => JSON.parse(Buffer.from(text, 'base64url').toString());

/** The attacker's site: `/phish?to=<url>` is a page with one link to `to`; every request is
 * recorded (a stolen result would arrive at `/steal#…`: the page load itself is the evidence)
 * and anything else is answered with an empty page. */
async function startAttacker() {
  const hits = [];
  const http = createServer((request, response) => {
    const url = new URL(request.url, 'http://attacker');
    hits.push(url.pathname);
    response.setHeader('content-type', 'text/html; charset=utf-8');
    if (url.pathname === '/phish') {
      const to = url.searchParams.get('to') ?? '';
      const href = to.replaceAll('&', '&amp;').replaceAll('"', '&quot;');
      response.end(`<!DOCTYPE html><html lang="ja"><title>受付</title><a id="go" href="${href}">マイナンバーカードで受付</a></html>`);
    } else {
      response.end('<!DOCTYPE html><title>stolen</title>');
    }
  });
  await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${http.address().port}`;
  return {
    origin,
    hits,
    stolen: () => hits.filter((path) => path.startsWith('/steal')),
    close: () => new Promise((resolve) => http.close(resolve)),
  };
}

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  attacker = await startAttacker();
  assert.notEqual(new URL(server.base).origin, attacker.origin);
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await attacker?.close();
});

/** A browser context that records the practice app's request before the page takes it off the
 * address bar (the attacker reads its own session's request the same way). */
async function recordingPage() {
  const opened = await phonePage(browser);
  await opened.context.addInitScript(() => {
    if (location.pathname.endsWith('/eid-app')) window.__appRequest = location.hash.slice(1);
  });
  return opened;
}

async function takeRequest(page) {
  await page.waitForURL(/\/eid-app/);
  await hydrated(page);
  const request = await page.evaluate(() => window.__appRequest);
  assert.ok(request, 'the practice app was opened with a request');
  return unb64url(request);
}

/** The attacker's own session: a real reception's request for the app. */
async function attackersReceptionRequest(kind) {
  const { context, page } = await recordingPage();
  await toReview(server, page, kind);
  await toCardStep(page);
  await page.getByTestId('use-app').click();
  const request = await takeRequest(page);
  await context.close();
  return request;
}

/** The attacker's own session: a real 同意照会 request for the app. */
async function attackersManageRequest(kind) {
  const { context, page } = await recordingPage();
  await page.goto(`${server.base}/r/${server.links[kind]}/manage`);
  await page.getByTestId('manage-start').click();
  await page.waitForURL(/\/manage$/);
  await hydrated(page);
  await page.getByTestId('use-app').click();
  const request = await takeRequest(page);
  await context.close();
  return request;
}

/** The patient follows the attacker's link to the practice app with `request`. */
async function victimOpens(request, kind) {
  const opened = await phonePage(browser);
  const target = `${server.base}/r/${server.links[kind]}/eid-app#${b64url(JSON.stringify(request))}`;
  await opened.page.goto(`${attacker.origin}/phish?to=${encodeURIComponent(target)}`);
  await opened.page.locator('#go').click();
  await opened.page.waitForURL(/\/eid-app/);
  await hydrated(opened.page);
  return opened;
}

/** The practice app refused with `code`, offers nothing to sign and stayed where it was. */
async function assertRefused(page, code, words) {
  const refusal = page.getByTestId('app-refused');
  await refusal.waitFor();
  assert.equal(await refusal.getAttribute('data-code'), code);
  assert.match(await refusal.textContent(), words);
  assert.equal(await page.getByTestId('app-sign').count(), 0, 'nothing to sign');
  assert.equal(await page.getByTestId('pin').count(), 0, 'no PIN asked');
  assert.equal(new URL(page.url()).origin, new URL(server.base).origin, 'still on the real site');
  assert.deepEqual(attacker.stolen(), [], 'nothing was sent to the attacker');
  await screenshot(page, `attack-relay-refused-${code}`);
}

describe('a relaying site (issue 12, section 1)', () => {
  test('the real request is accepted and shows what the signed text says', async () => {
    const request = await attackersReceptionRequest('separate_route');
    const real = new URL(server.base).origin;
    assert.equal(request.origin, real);
    assert.match(request.message, new RegExp(`\\norigin=${real.replaceAll('.', '\\.')}\\n`));
    const institution = request.message.match(/\ninstitution=(\d{10})\n/)[1];
    const { context, page } = await phonePage(browser);
    await page.goto(`${server.base}/r/${server.links.separate_route}/eid-app#${b64url(JSON.stringify(request))}`);
    await hydrated(page);
    await page.getByTestId('app-sign').waitFor();
    assert.equal(await page.getByTestId('app-origin').textContent(), real);
    assert.equal(await page.getByTestId('app-institution-code').textContent(), institution);
    assert.ok((await page.getByTestId('app-institution').textContent()).length > 0);
    // toReview answers 診療・薬剤 yes and 特定健診 no: the text says so.
    assert.equal(await page.getByTestId('app-clinical').textContent(), '同意する');
    assert.equal(await page.getByTestId('app-checkups').textContent(), '同意しない');
    await context.close();
  });

  test("the attacker's origin and return address: refused, never sent to the attacker", async () => {
    const request = await attackersReceptionRequest('separate_route');
    const relayed = { ...request, origin: attacker.origin, return_uri: `${attacker.origin}/steal` };
    const { context, page, problems } = await victimOpens(relayed, 'separate_route');
    await assertRefused(page, 'origin_mismatch', /偽のサイト/);
    assert.deepEqual(problems, []);
    await context.close();
  });

  test("the real origin claimed, the result sent to the attacker: refused", async () => {
    const request = await attackersReceptionRequest('separate_route');
    for (const return_uri of [
      `${attacker.origin}/steal`,
      `${new URL(server.base).origin}@${attacker.origin.replace('http://', '')}/steal`,
      `${new URL(server.base).origin}.${attacker.origin.replace('http://', '')}/steal`,
    ]) {
      const { context, page } = await victimOpens({ ...request, return_uri }, 'separate_route');
      await assertRefused(page, 'return_mismatch', /送り先/);
      await context.close();
    }
  });

  test('look-alike origins for the same text: refused', async () => {
    const request = await attackersReceptionRequest('separate_route');
    const real = new URL(server.base);
    for (const origin of [
      `http://127.0.0.1:${real.port}`,
      `http://LOCALHOST:${real.port}`,
      `http://localhost.:${real.port}`,
      `http://localhost:${Number(real.port) + 1}`,
      attacker.origin,
    ]) {
      const { context, page } = await victimOpens({ ...request, origin, return_uri: `${origin}/steal` }, 'separate_route');
      await assertRefused(page, 'origin_mismatch', /偽のサイト/);
      await context.close();
    }
  });

  test('同意照会 relayed: refused the same way', async () => {
    const request = await attackersManageRequest('separate_route');
    assert.match(request.message, /^uketsuke-manage-binding-v1\n/);
    const relayed = { ...request, origin: attacker.origin, return_uri: `${attacker.origin}/steal` };
    const { context, page } = await victimOpens(relayed, 'separate_route');
    await assertRefused(page, 'origin_mismatch', /偽のサイト/);
    await context.close();
  });

  test('in English, the refusal says what to do next', async () => {
    const request = await attackersReceptionRequest('separate_route');
    const relayed = { ...request, origin: attacker.origin, return_uri: `${attacker.origin}/steal` };
    const { context, page } = await phonePage(browser, { locale: 'en-GB' });
    await page.goto(`${server.base}/r/${server.links.separate_route}/eid-app?lang=en#${b64url(JSON.stringify(relayed))}`);
    await hydrated(page);
    const refusal = page.getByTestId('app-refused');
    await refusal.waitFor();
    assert.match(await refusal.textContent(), /fake site/);
    assert.match(await refusal.textContent(), /open the reception page again/);
    assert.deepEqual(attacker.stolen(), []);
    await screenshot(page, 'attack-relay-refused-en');
    await context.close();
  });

  test("the untouched request signed for the patient's own session is refused by the server", async () => {
    // Everything real: the result goes back to the real site, into the patient's session,
    // which never held the attacker's challenge.
    const request = await attackersReceptionRequest('separate_route');
    const { context, page } = await phonePage(browser);
    await toReview(server, page, 'separate_route');
    await page.goto(`${server.base}/r/${server.links.separate_route}/eid-app#${b64url(JSON.stringify(request))}`);
    await hydrated(page);
    // Person 4 has the demo PIN 5678.
    await page.getByTestId('demo-person').selectOption('4');
    await page.getByTestId('pin').fill('5678');
    await page.getByTestId('app-sign').click();
    await page.waitForURL(/\/eid-return$/);
    await page.getByTestId('card-error').filter({ hasText: 'やり直して' }).waitFor({ timeout: 30_000 });
    assert.doesNotMatch(page.url(), /\/done$/);
    assert.deepEqual(attacker.stolen(), []);
    await context.close();
  });
});
