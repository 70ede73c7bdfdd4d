/**
 * @module The operator's views besides the status page: the `server.stats` line
 * (`--stats-interval`) and the metrics listener (`--metrics-address`).
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { once } from 'node:events';
import { join } from 'node:path';
import { test } from 'node:test';

import { httpGet } from '../helpers/http-get.js';
import { assertOneLine, fixtures, frontPids, runToExit, startServer, waitForLog, type StartedServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/waits.js';

const apps = join(fixtures, 'apps');

/** The `server.stats` lines written so far (JSON log format), oldest first. */
function statsLines(server: StartedServer): Record<string, unknown>[] {
  return server.stderr().split('\n').filter((line) => line.includes('"server.stats"')).map((line) => JSON.parse(line) as Record<string, unknown>);
}

const sumOf = (lines: Record<string, unknown>[], field: string): number => lines.reduce((total, line) => total + Number(line[field]), 0);

test('--stats-interval: one line per interval for the whole server; its requests and errors are those made since the previous line', async () => {
  const server = await startServer(['--app', 'suite:app', '-f', apps, '--fronts', '2', '--processes', '2', '--stats-interval', '0.3', '--log-format', 'json']);
  try {
    await waitForLog(server, /"server\.stats"/);
    const first = statsLines(server)[0]!;
    // Once per server, from the primary, with every front and worker in it.
    assert.equal(first.component, 'primary');
    assert.equal(first.msg, 'stats');
    assert.equal(first.fronts, 2);
    assert.equal(first.workers, 2);
    for (const field of ['rssMb', 'primaryRssMb', 'frontsRssMb', 'workersRssMb']) assert.ok(Number(first[field]) > 0, `${field} > 0`);
    assert.ok(Math.abs(Number(first.rssMb) - Number(first.primaryRssMb) - Number(first.frontsRssMb) - Number(first.workersRssMb)) < 0.5, 'rssMb is the sum');
    assert.equal(first.schedulersRssMb, undefined, 'no -K: no scheduler memory');
    for (const field of ['connections', 'inApp', 'queued']) assert.equal(typeof first[field], 'number');

    // Requests made after a line are counted once, in the lines that follow it.
    const before = statsLines(server).length;
    for (let n = 0; n < 5; n += 1) assert.equal((await httpGet(server.port, '/hello')).status, 200);
    for (let n = 0; n < 3; n += 1) assert.equal((await httpGet(server.port, '/boom')).status, 500);
    assert.equal((await httpGet(server.port, '/nothing-here')).status, 404);
    await waitUntil('the requests counted', () => sumOf(statsLines(server).slice(before), 'requests') >= 9);
    const counted = statsLines(server).length;
    await waitForLog(server, /"server\.stats"/, { times: counted + 2 });
    const since = statsLines(server).slice(before);
    assert.equal(sumOf(since, 'requests'), 9, 'each request in exactly one line');
    assert.equal(sumOf(since, 'errors'), 3, 'errors: the 5xx answers');
    for (const line of since) assert.ok(Number(line.seconds) > 0, `seconds ${String(line.seconds)}`);
  } finally {
    await server.stop();
  }
});

test('--stats-interval 0: no line; the text format says it on one line', async () => {
  const off = await startServer(['--app', 'hello:app', '-f', apps, '--processes', '1', '--stats-interval', '0']);
  const on = await startServer(['--app', 'hello:app', '-f', apps, '--processes', '1', '--stats-interval', '0.2']);
  try {
    await waitForLog(on, /server\.stats stats seconds=[\d.]+ requests=\d+ errors=\d+ connections=\d+ inApp=\d+ queued=\d+ fronts=1 workers=1 rssMb=/, { times: 2 });
    // `on` wrote two lines in this time: `off`, started first, would have too.
    assert.doesNotMatch(off.stderr(), /server\.stats/);
  } finally {
    await Promise.all([off.stop(), on.stop()]);
  }
});

/** The metrics listener's port, from its start-up line. */
function metricsPort(server: StartedServer): number {
  const match = /^metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics$/m.exec(server.stdout());
  assert.ok(match !== null, `a "metrics on" line in:\n${server.stdout()}`);
  return Number(match[1]);
}

test('--metrics-address: the whole server\'s /metrics for anyone who reaches it, nothing else there; it outlives a front', async () => {
  const server = await startServer(['--app', 'hello:app', '-f', apps, '--fronts', '2', '--processes', '2', '--metrics-address', '127.0.0.1:0', '--stats-interval', '0']);
  try {
    const port = metricsPort(server);
    assert.notEqual(port, server.port);
    await httpGet(server.port, '/');
    const scrape = await httpGet(port, '/metrics');
    assert.equal(scrape.status, 200);
    assert.match(String(scrape.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const text = scrape.body.toString();
    assert.match(text, /^w2n_workers 2$/m, 'both fronts\' workers: the server-wide sum');
    assert.match(text, /^w2n_fronts 2$/m);
    assert.match(text, /^w2n_responses_total\{class="2xx"\} [1-9]/m);
    assert.equal((await httpGet(port, '/metrics?name[]=w2n_workers')).status, 200, 'a query string is ignored');
    assert.equal((await httpGet(port, '/metrics', { method: 'HEAD' })).status, 200);

    // Nothing else: not the application, not /health, not the status page.
    for (const path of ['/', '/health', '/status.json', '/metrics/', '/METRICS', '/x/../metrics']) {
      const answer = await httpGet(port, path);
      assert.equal(answer.status, 404, path);
      assert.match(answer.body.toString(), /serves \/metrics only/);
    }
    const post = await httpGet(port, '/metrics', { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
    // Scrapes are not the application's requests: w2n_responses_total counts the one request above only.
    assert.match((await httpGet(port, '/metrics')).body.toString(), /^w2n_responses_total\{class="2xx"\} 1$/m);

    // The primary holds the socket: with a front gone, the other (and then its replacement) answer.
    process.kill(frontPids(server)[0]!, 'SIGKILL');
    assert.equal((await httpGet(port, '/metrics')).status, 200);
    await waitForLog(server, /front\.ready/, { times: 3 });
    assert.equal((await httpGet(port, '/metrics')).status, 200);
  } finally {
    await server.stop();
  }
});

test('--metrics-address: a bad value or a port in use is one line and exit 2, before anything listens', async () => {
  for (const [value, pattern] of [
    ['9100', /--metrics-address "9100": expected IP:PORT/],
    ['example.com:9100', /"example\.com" is not an IP address/],
    ['0.0.0.0:99999', /port 99999 is not from 0 to 65535/],
  ] as const) {
    assertOneLine(await runToExit(['--app', 'hello:app', '-f', apps, '-p', '0', '--metrics-address', value]), 'W2N_ERR_CONFIG_BAD_VALUE', pattern);
  }
  const taken: Server = createServer();
  taken.listen(0, '127.0.0.1');
  await once(taken, 'listening');
  const { port } = taken.address() as { port: number };
  try {
    const result = await runToExit(['--app', 'hello:app', '-f', apps, '-p', '0', '--metrics-address', `127.0.0.1:${port}`]);
    assertOneLine(result, 'W2N_ERR_LISTEN_IN_USE', new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: address already in use`));
    assert.doesNotMatch(result.stdout, /starting on/, 'nothing listened');
  } finally {
    taken.close();
  }
});
