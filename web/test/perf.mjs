// A measurement, not a test: from opening the pairing link to the first
// screen showing live status (the branch from git.status), on a throttled
// phone profile: 1.6 Mbit/s down, 750 kbit/s up, 150 ms latency (CDP
// Network.emulateNetworkConditions) and a 4x CPU slowdown
// (Emulation.setCPUThrottlingRate), cold cache. Target: <= 2 s.
// Usage: node web/test/perf.mjs [runs]
import { startWorld, launch, phone } from './lib/env.mjs';

const runs = Number(process.argv[2] || 3);
const world = await startWorld();
const browser = await launch();
const times = [];
try {
  for (let i = 0; i < runs; i++) {
    const { context, page } = await phone(browser);
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false, latency: 150, downloadThroughput: (1.6 * 1024 * 1024) / 8, uploadThroughput: (750 * 1024) / 8,
    });
    await cdp.send('Emulation.setCPUThrottlingRate', { rate: 4 });
    const t0 = Date.now();
    await page.goto(world.pairLink(), { waitUntil: 'commit' });
    await page.getByTestId('branch').getByText('main').waitFor({ timeout: 30000 });
    const ms = Date.now() - t0;
    const nav = await page.evaluate(() => {
      const n = performance.getEntriesByType('navigation')[0];
      return { domContentLoaded: Math.round(n.domContentLoadedEventEnd), transferred: performance.getEntriesByType('resource').reduce((s, r) => s + r.transferSize, n.transferSize) };
    });
    console.log(`run ${i + 1}: live status after ${ms} ms (DOMContentLoaded ${nav.domContentLoaded} ms, ${nav.transferred} bytes transferred)`);
    times.push(ms);
    await context.close();
  }
} finally {
  await browser.close();
  await world.close();
}
times.sort((a, b) => a - b);
const median = times[Math.floor(times.length / 2)];
console.log(`first screen with live status, throttled (1.6 Mbit/s, 150 ms, CPU x4): median ${median} ms over ${times.length} runs (target 2000 ms)`);
