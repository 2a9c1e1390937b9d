// Times the demo flow from opening the link to the done screen, as a patient's phone would go
// through it (390×844, Chromium, the practice card), with the machine doing the "typing": the
// figure is what the product costs, not how fast a person reads. Optional 4x CPU slowdown and a
// slow-4G network (as Lighthouse's mobile preset) with --slow. Prints each screen's time and the
// total per run, then the median of the totals.
// Usage: node e2e/measure/time-to-done.mjs [runs=5] [--slow]   (needs scripts/build-site.sh)

import { hydrated, launchBrowser, phonePage, startServer } from '../tests/harness.mjs';

const runs = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 5);
const slow = process.argv.includes('--slow');

const server = await startServer();
const browser = await launchBrowser();
const totals = [];
try {
  for (let run = 1; run <= runs; run += 1) {
    const { context, page } = await phonePage(browser);
    if (slow) {
      const cdp = await context.newCDPSession(page);
      await cdp.send('Emulation.setCPUThrottlingRate', { rate: 4 });
      await cdp.send('Network.emulateNetworkConditions', {
        offline: false,
        latency: 150,
        downloadThroughput: (1.6 * 1024 * 1024) / 8,
        uploadThroughput: (750 * 1024) / 8,
      });
    }
    const marks = [];
    const start = performance.now();
    const mark = (name) => marks.push([name, Math.round(performance.now() - start)]);
    await page.goto(`${server.base}/r/${server.links.separate_route}`);
    mark('landing shown');
    await page.getByTestId('start').click();
    await page.waitForURL(/\/consent/);
    mark('consent');
    await page.locator('input[name=clinical_medication][value=yes]').check();
    await page.locator('input[name=checkups][value=yes]').check();
    await page.locator('form button[type=submit]').click();
    await page.waitForURL(/\/review$/);
    mark('review');
    await page.getByTestId('to-card').click();
    await page.waitForURL(/\/card$/);
    await hydrated(page);
    mark('card step ready');
    await page.getByTestId('use-practice').click();
    await page.getByTestId('pin').waitFor({ timeout: 60_000 });
    mark('PIN pad (card read)');
    await page.getByTestId('pin').fill('1234');
    await page.getByTestId('send').click();
    await page.waitForURL(/\/done$/, { timeout: 60_000 });
    await page.getByTestId('reception-number').waitFor({ timeout: 60_000 });
    mark('done with 受付番号');
    const total = marks.at(-1)[1];
    totals.push(total);
    console.log(`run ${run}: ${marks.map(([n, t]) => `${n} ${t} ms`).join(' · ')}`);
    await context.close();
  }
} finally {
  await browser.close();
  await server.stop();
}
totals.sort((a, b) => a - b);
console.log(`link to done${slow ? ' (4x CPU, slow 4G)' : ''}: median ${totals[Math.floor(totals.length / 2)]} ms over ${runs} runs (min ${totals[0]}, max ${totals.at(-1)})`);
