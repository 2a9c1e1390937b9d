// The desktop card helper (helper/) end to end: the card step on a computer offers the helper,
// its `uketsuke-eid://sign#…` link is caught (Chromium has no handler for it and says so on the
// console), the helper reads the virtual My Number card through a real pcsc-lite (a private
// pcscd with vsmartcard's vpcd, started by `uketsuke-vpcd-card --pcscd`), signs, and "opens" its
// return address through $BROWSER, which the test follows to the done screen. Its test mode takes
// the PIN from standard input (feature `test-mode`, never in a release build). The window itself
// is driven by keyboard under Xvfb and its screenshots taken in both languages.
//
// Needs `cargo build -p uketsuke-card-helper --features test-mode --bins` (scripts/test.sh does
// it); UKETSUKE_HELPER_BIN_DIR names another folder than target/debug for the binaries.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, SCREENSHOTS, launchBrowser, screenshot, startServer } from './harness.mjs';
import { assertNoAxeViolations, toCardStep, toReview, waitDone } from './patient.mjs';

const BIN = process.env.UKETSUKE_HELPER_BIN_DIR ?? join(ROOT, 'target', 'debug');
const HELPER = join(BIN, 'uketsuke-card-helper');
const CARD = join(BIN, 'uketsuke-vpcd-card');

let server;
let browser;
let reader;
let dir;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, check, timeout = 20_000) {
  const end = Date.now() + timeout;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** The virtual card on a private pcscd's reader; resolves with the daemon's socket. */
async function startReader(where) {
  const child = spawn(CARD, ['--pcscd', where], { stdio: ['pipe', 'pipe', 'inherit'] });
  let output = '';
  child.stdout.on('data', (chunk) => { output += chunk; });
  const socket = await until('the virtual card on pcscd', () => output.match(/PCSCLITE_CSOCK_NAME=(\S+)/)?.[1]);
  return {
    socket,
    async stop() {
      child.stdin.end();
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
    },
  };
}

before(async () => {
  for (const bin of [HELPER, CARD]) {
    assert.ok(existsSync(bin), `${bin} is missing: cargo build -p uketsuke-card-helper --features test-mode --bins`);
  }
  dir = mkdtempSync(join(tmpdir(), 'uketsuke-helper-e2e-'));
  reader = await startReader(join(dir, 'pcscd'));
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await reader?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A computer's page whose card step hands off to the helper: resolves with the link caught. */
async function helperLink({ kind = 'separate_route', shots = false } = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'ja-JP' });
  const page = await context.newPage();
  const links = [];
  page.on('console', (msg) => {
    const link = msg.text().match(/uketsuke-eid:\/\/sign#[A-Za-z0-9_-]+/)?.[0];
    if (link) links.push(link);
  });
  const cdp = await context.newCDPSession(page);
  await cdp.send('Page.enable');
  cdp.on('Page.frameRequestedNavigation', (event) => {
    if (event.url.startsWith('uketsuke-eid:')) links.push(event.url);
  });
  await toReview(server, page, kind);
  await toCardStep(page);
  assert.equal(await page.getByTestId('helper-install').getAttribute('href'), '/card-helper.html');
  if (shots) {
    await assertNoAxeViolations(page, 'card step with the helper offered');
    await screenshot(page, 'helper-card-step-ja');
    // The install page is served, in both languages.
    const install = await page.request.get(`${server.base}/card-helper.html`);
    assert.equal(install.status(), 200);
    assert.match(await install.text(), /uketsuke-card-helper --install/);
  }
  await page.getByTestId('use-helper').click();
  const link = await until('the uketsuke-eid link', () => links[0]);
  return { context, page, link };
}

/** A $BROWSER script that writes the address it is given to a file. */
function browserScript(name) {
  const opened = join(dir, `${name}.opened`);
  const script = join(dir, `${name}.sh`);
  writeFileSync(script, `#!/bin/sh\nprintf '%s' "$1" > '${opened}.tmp' && mv '${opened}.tmp' '${opened}'\n`);
  chmodSync(script, 0o755);
  rmSync(opened, { force: true });
  return { script, opened };
}

async function openedUrl(opened, timeout = 10_000) {
  return until('the return address', () => existsSync(opened) && readFileSync(opened, 'utf8'), timeout);
}

/** Runs the helper in test mode (PIN from standard input). */
async function runHelper(link, input, name) {
  const { script, opened } = browserScript(name);
  const run = spawnSync(HELPER, ['--pin-from-stdin', link], {
    input,
    encoding: 'utf8',
    env: { ...process.env, PCSCLITE_CSOCK_NAME: reader.socket, BROWSER: script },
    timeout: 60_000,
  });
  const url = run.status === 0 ? await openedUrl(opened) : null;
  return { stdout: run.stdout, status: run.status, url, opened };
}

describe('the desktop card helper', () => {
  test('a reception completes through the helper, pcsc-lite and the virtual card', async () => {
    const { context, page, link } = await helperLink({ shots: true });
    const run = await runHelper(link, '0000\n1234\n', 'ok');
    assert.equal(run.stdout, 'tries_left=3\nwrong_pin tries_left=2\nreturned=ok\n');
    const linkId = server.links.separate_route;
    assert.ok(run.url.startsWith(`${server.base}/r/${linkId}/eid-return#`), run.url);
    await page.goto(run.url);
    await waitDone(page);
    assert.equal(await page.getByTestId('reception-number').count(), 1);
    await screenshot(page, 'helper-done-ja');
    await context.close();
  });

  test('the helper cancelled, or the card gone: the return page says so in words', async () => {
    const { context, page, link } = await helperLink();
    const run = await runHelper(link, 'cancel\n', 'cancel');
    assert.equal(run.stdout, 'tries_left=3\nreturned=cancelled\n');
    assert.match(run.url, /#error=cancelled$/);
    await page.goto(run.url);
    await page.getByTestId('card-error').filter({ hasText: '中止' }).waitFor();
    // The helper's card errors, as its return address carries them.
    const back = run.url.replace(/#.*$/, '');
    for (const [code, words] of [
      ['no_reader', 'カードリーダーが見つかりませんでした'],
      ['card_removed', 'カードが離れました'],
      ['not_my_number_card', 'マイナンバーカードではない'],
      ['pin_blocked', 'ロックされています'],
    ]) {
      // A fresh load each time (a fragment change alone keeps the page).
      await page.goto('about:blank');
      await page.goto(`${back}#error=${code}`);
      await page.getByTestId('card-error').filter({ hasText: words }).waitFor();
    }
    await context.close();
  });

  test('a relayed request for another origin is refused by the helper, which opens nothing', async () => {
    const { context, link } = await helperLink();
    const request = JSON.parse(Buffer.from(link.split('#')[1], 'base64url').toString());
    // The look-alike site relays the real text and asks for the result at its own address, or
    // names the real site and asks for the result elsewhere.
    const real = new URL(server.base);
    const other = real.hostname === 'localhost' ? '127.0.0.1' : 'localhost';
    const lookAlikes = [`http://${other}:${real.port}`, `http://127.0.0.2:${real.port}`, 'https://uketsuke.example.jp.evil.example'];
    const cases = [
      ...lookAlikes.map((origin) => [origin, `${origin}/r/x/eid-return`, 'origin_mismatch']),
      ...lookAlikes.map((origin) => [request.origin, `${origin}/r/x/eid-return`, 'return_mismatch']),
    ];
    for (const [origin, returnUri, code] of cases) {
      const relayed = { ...request, origin, return_uri: returnUri };
      const relayedLink = `uketsuke-eid://sign#${Buffer.from(JSON.stringify(relayed)).toString('base64url')}`;
      const run = await runHelper(relayedLink, '1234\n', 'relayed');
      assert.equal(run.stdout, `refused=${code}\n`, `${origin} ${returnUri}`);
      assert.equal(run.status, 2);
      await sleep(300);
      assert.equal(existsSync(run.opened), false, 'nothing opened');
    }
    await context.close();
  });

  test('the window under Xvfb, by keyboard, in Japanese and English', async () => {
    const display = `:${90 + (process.pid % 9)}`;
    const xvfb = spawn('Xvfb', [display, '-screen', '0', '1280x1024x24', '-nolisten', 'tcp'], { stdio: 'ignore' });
    try {
      await until('Xvfb', () => existsSync(`/tmp/.X11-unix/X${display.slice(1)}`));
      const shots = join(dir, 'shots');
      mkdirSync(shots, { recursive: true });
      mkdirSync(SCREENSHOTS, { recursive: true });
      const xdotool = (...args) => spawnSync('xdotool', args, { env: { ...process.env, DISPLAY: display } });
      for (const lang of ['ja', 'en']) {
        const { context, page, link } = await helperLink();
        const { script, opened } = browserScript(`window-${lang}`);
        const window = spawn(HELPER, ['--lang', lang, link], {
          env: {
            ...process.env,
            DISPLAY: display,
            PCSCLITE_CSOCK_NAME: reader.socket,
            BROWSER: script,
            UKETSUKE_HELPER_SCREENSHOTS: shots,
            LIBGL_ALWAYS_SOFTWARE: '1',
          },
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        const exited = new Promise((r) => window.once('exit', r));
        // The request, with "read the card" focused: Enter reads the card.
        // Without a window manager nothing gives a new window the keyboard: xdotool does, as a
        // window manager would.
        const windows = () => xdotool('search', '--pid', String(window.pid)).stdout.toString().trim().split(/\s+/).filter(Boolean).sort((a, b) => Number(a) - Number(b));
        await until(`review-${lang}.png`, () => existsSync(join(shots, `review-${lang}.png`)), 60_000);
        xdotool('windowfocus', windows()[0]);
        await sleep(300);
        xdotool('key', 'Return');
        // The PIN window, tries left first and the field focused.
        await until(`pin-${lang}.png`, () => existsSync(join(shots, `pin-${lang}.png`)), 60_000);
        xdotool('windowfocus', windows()[1]);
        await sleep(300);
        if (lang === 'ja') {
          xdotool('type', '--delay', '80', '1234');
          xdotool('key', 'Return');
          const url = await openedUrl(opened, 30_000);
          await page.goto(url);
          await waitDone(page);
        } else {
          xdotool('key', 'Escape');
          assert.match(await openedUrl(opened, 30_000), /#error=cancelled$/);
        }
        await exited;
        for (const stage of ['review', 'pin']) {
          const file = join(shots, `${stage}-${lang}.png`);
          assert.ok(statSync(file).size > 5_000, `${file} has content`);
          copyFileSync(file, join(SCREENSHOTS, `helper-${stage}-${lang}.png`));
        }
        await context.close();
      }
      assert.notDeepEqual(readFileSync(join(shots, 'review-ja.png')), readFileSync(join(shots, 'review-en.png')));
    } finally {
      xvfb.kill();
    }
  });
});
