/**
 * A real browser (Debian's chromium, driven by playwright-core) loads a page whose script is
 * web2py.js's `web2py_websocket` (test/fixtures/apps/realtime_page.py), joins a group through
 * the hub, and receives a message that Python published with websocket_send (the worker
 * package's helper, from inside the application). Skipped where chromium is not installed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join as joinPath } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { fixtures, startServer, type StartedServer } from '../helpers/server.js';

const CHROMIUM = '/usr/bin/chromium';
const apps = joinPath(fixtures, 'apps');
const KEY = 'browser-key';
const hasChromium = existsSync(CHROMIUM);

let server: StartedServer;
let browser: Browser;

before(async () => {
  if (!hasChromium) return;
  server = await startServer(['--app', 'realtime_page:app', '-f', apps, '--processes', '1', '--realtime-key', KEY, '--realtime-port', '0']);
  browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true,
    args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
  });
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

test('a page using web2py_websocket receives what Python publishes, on the prefix and on --realtime-port', { skip: !hasChromium && 'no chromium' }, async () => {
  const port = Number(/realtime hub on \S+:(\d+)/.exec(server.stdout())![1]);
  const page = await browser.newPage();
  for (const [wsUrl, publishUrl] of [
    [`ws://127.0.0.1:${server.port}/_ws/realtime/news`, server.url('/_ws/')],
    [`ws://127.0.0.1:${port}/realtime/news`, `http://127.0.0.1:${port}`],
  ] as const) {
    await page.goto(server.url(`/page?ws=${encodeURIComponent(wsUrl)}`));
    await page.waitForFunction(() => (window as unknown as { opened: boolean }).opened);
    const action = new URL(server.url('/publish'));
    action.search = new URLSearchParams({ url: publishUrl, message: `héllo from Python via ${publishUrl}`, key: KEY, group: 'news' }).toString();
    assert.equal(await (await fetch(action)).text(), 'published');
    // The previous page's socket may be closed after this one joined: its `-anonymous` notice
    // then comes here too (presence is right to send it), so only the published text is compared.
    const published = (): Promise<string[]> => page.evaluate(() => (window as unknown as { received: string[] }).received.filter((text) => !/^[+-]/.test(text)));
    await page.waitForFunction(() => (window as unknown as { received: string[] }).received.some((text) => !/^[+-]/.test(text)));
    assert.deepEqual(await published(), [`héllo from Python via ${publishUrl}`]);
    assert.equal(await page.locator('#log li', { hasText: 'héllo' }).textContent(), `héllo from Python via ${publishUrl}`);
  }
  await page.close();
});
