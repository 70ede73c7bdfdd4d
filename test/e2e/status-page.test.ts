/**
 * @module The live status page: who may see it, what /status.json holds across fronts, and the
 * page itself in a real browser (Debian's chromium through playwright-core), whose charts move
 * under load. Skips the browser part where chromium is not installed (CI installs it).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';

import { httpGet } from '../helpers/http-get.js';
import { runLoad } from '../helpers/load.js';
import { fixtures, repoRoot, startServer, type StartedServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/waits.js';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
const TOKEN = 'status-token-for-tests-0123456789';
const apps = join(fixtures, 'apps');

interface Status {
  server: { version: string; uptimeSeconds: number; listeners: string[]; workerClass: string; fronts: number; reloads: number; config: Record<string, unknown> };
  now: { inApp: number; inAppLimit: number; queued: number; queueSize: number; connections: number; maxConnections: number };
  history: { t: number; responses: number[]; p50Ms: number | null }[];
  workers: { front: number; pid: number; state: string; served: number; rssBytes: number | null }[];
  inflight: { method: string; path: string; seconds: number }[];
  events: { name: string; detail: string }[];
}

async function statusOf(server: StartedServer, headers: Record<string, string> = {}): Promise<Status> {
  const answer = await httpGet(server.port, '/status.json', { headers });
  assert.equal(answer.status, 200, answer.body.toString());
  return JSON.parse(answer.body.toString()) as Status;
}

describe('status page, two fronts', () => {
  let server: StartedServer;
  before(async () => {
    server = await startServer(['--app', 'slow:app', '-f', apps, '--fronts', '2', '--processes', '2', '--status-token', TOKEN, '--trusted-proxies', 'loopback']);
  });
  after(async () => {
    await server?.stop();
  });

  test('loopback sees /status.json: both fronts\' workers, gauges against the limits, the server\'s facts, no secret', async () => {
    const status = await statusOf(server);
    assert.equal(status.server.fronts, 2);
    assert.equal(status.workers.length, 2, 'one worker per front');
    assert.deepEqual(new Set(status.workers.map((worker) => worker.front)), new Set([1, 2]));
    for (const worker of status.workers) {
      assert.ok(worker.pid > 1);
      assert.equal(worker.state, 'ready');
      assert.ok(worker.rssBytes === null || worker.rssBytes > 1_000_000);
    }
    assert.equal(status.now.queueSize, 2 * 1024, 'each front\'s queue counts');
    assert.ok(status.now.inAppLimit > 0);
    assert.match(status.server.listeners.join(' '), /127\.0\.0\.1:\d+/);
    assert.doesNotMatch(JSON.stringify(status), new RegExp(TOKEN), 'the token never appears in the data');
  });

  test('a request in flight is listed with its path and age; the history counts responses by class', async () => {
    const slow = httpGet(server.port, '/status-probe?s=1.5');
    await waitUntil('the probe in the in-flight list', async () => (await statusOf(server)).inflight.some((row) => row.path === '/status-probe'));
    assert.equal((await slow).status, 200);
    // The history closes a second each second: the probe's 200 shows once its second closed.
    await waitUntil('a 2xx in the history', async () => (await statusOf(server)).history.some((point) => (point.responses[1] ?? 0) > 0));
  });

  test('the world without a token reaches the application; a wrong token gets 401; the right one the data', async () => {
    const world = { 'X-Forwarded-For': '203.0.113.7' };
    const fromWorld = await httpGet(server.port, '/status.json', { headers: world });
    assert.notEqual(fromWorld.status, 401);
    assert.doesNotMatch(fromWorld.body.toString(), /"workers"/, 'the application answered, not the status page');
    const wrong = await httpGet(server.port, '/status.json', { headers: { ...world, Authorization: 'Bearer not-the-token' } });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.headers['www-authenticate'], 'Bearer realm="status"');
    const right = await httpGet(server.port, '/status.json', { headers: { ...world, Authorization: `Bearer ${TOKEN}` } });
    assert.equal(right.status, 200);
    const page = await httpGet(server.port, `/status?token=${TOKEN}`, { headers: world });
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-security-policy']), /default-src 'none'/);
    assert.doesNotMatch(server.stderr(), new RegExp(TOKEN), 'never logged');
  });

  test('the page\'s files are served by the front: its script, its style, uPlot', async () => {
    for (const [path, type] of [['/status/assets/status.js', /javascript/], ['/status/assets/uPlot.iife.min.js', /javascript/], ['/status/assets/uPlot.min.css', /css/]] as const) {
      const answer = await httpGet(server.port, path);
      assert.equal(answer.status, 200, path);
      assert.match(String(answer.headers['content-type']), type);
    }
    assert.equal((await httpGet(server.port, '/status/assets/nothing.js')).status, 404);
  });
});

describe('status page in a browser', { skip: !hasChromium && 'no chromium' }, () => {
  let server: StartedServer;
  let browser: Browser;
  before(async () => {
    server = await startServer(['--app', 'hello:app', '-f', apps, '--processes', '2']);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: process.getuid?.() === 0 ? ['--no-sandbox'] : [] });
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('the charts move under load, updating every second without a reload', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    page.on('console', (message) => { if (message.type() === 'error') errors.push(message.text()); });
    await page.goto(server.url('/status'));
    await page.waitForFunction(() => Number(document.body.dataset.updates ?? 0) >= 1);
    const pointsBefore = Number(await page.getAttribute('[data-chart="rate"]', 'data-points'));
    let loading = true;
    const load = runLoad(server.port, '/', 4, () => !loading);
    try {
      // The rate chart's newest point shows the load: far more 2xx per second than the page's own
      // one poll a second; and the charts gain points as seconds pass.
      await page.waitForFunction((before) => {
        const chart = document.querySelector('[data-chart="rate"]');
        return Number(chart?.getAttribute('data-last') ?? 0) > 20 && Number(chart?.getAttribute('data-points') ?? 0) > before;
      }, pointsBefore, { timeout: 20_000 });
    } finally {
      loading = false;
      await load;
    }
    const pointsAfter = Number(await page.getAttribute('[data-chart="rate"]', 'data-points'));
    assert.ok(pointsAfter > pointsBefore, `the charts gained points (${pointsBefore} → ${pointsAfter})`);
    assert.equal(await page.locator('#workers tbody tr').count(), 2, 'one row per worker');
    assert.equal(await page.locator('canvas').count() >= 4, true, 'four uPlot charts drawn');
    assert.deepEqual(errors, []);
    // The README's picture, made by this test (docs/status-page.png).
    if (process.env.W2N_STATUS_SCREENSHOT === '1') {
      mkdirSync(join(repoRoot, 'docs'), { recursive: true });
      await page.screenshot({ path: join(repoRoot, 'docs', 'status-page.png'), fullPage: true });
    }
    await page.close();
  });
});
