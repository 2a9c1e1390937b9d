// Shared set-up of the browser suite: starts the release server on a free port with a fresh
// SQLite file and the built-in simulator, reads the demo links it prints, and launches Debian's
// Chromium through playwright-core. Everything runs on loopback.

import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const SCREENSHOTS = join(ROOT, 'e2e', 'screenshots');
export const PHONE = { width: 390, height: 844 };

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** Starts the server; resolves once it printed its address and demo links. */
export async function startServer(extraEnv = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'uketsuke-e2e-'));
  const binary = join(ROOT, 'target', 'release', 'uketsuke-server');
  const child = spawn(binary, [], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      UKETSUKE_LISTEN: '127.0.0.1:0',
      UKETSUKE_MODE: 'demo',
      UKETSUKE_DATABASE_URL: `sqlite://${join(dir, 'e2e.db')}`,
      UKETSUKE_SITE_ROOT: join(ROOT, 'target', 'site'),
      UKETSUKE_LOG: 'warn',
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const ready = new Promise((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 30_000);
    const onData = (chunk) => {
      output += chunk;
      if (/Open the demo landing page: /.test(output)) {
        clearTimeout(timer);
        resolveReady();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk) => { output += chunk; });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${output}`));
    });
  });
  await ready;
  const base = output.match(/running at (http:\/\/[^\s]+)/)[1];
  const links = {};
  for (const m of output.matchAll(/demo (\w+)\s+\S+\/r\/([0-9a-z]+)/g)) links[m[1]] = m[2];
  return {
    base,
    links,
    async stop() {
      child.removeAllListeners('exit');
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser() {
  return chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
}

/** A phone-sized page that records console errors and failed requests. */
export async function phonePage(browser, options = {}) {
  const context = await browser.newContext({
    viewport: PHONE,
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    locale: 'ja-JP',
    ...options,
  });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  return { context, page, problems };
}

/** Waits until the WASM has hydrated the page. */
export async function hydrated(page) {
  await page.waitForSelector('body[data-hydrated="true"]', { timeout: 20_000 });
}

export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}
