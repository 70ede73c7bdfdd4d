/**
 * Black-box: HTTPS, the access log and profiler, graceful stop, the demo fallback.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixtures, startServer, waitForLog, waitForStarted } from '../helpers/server.js';
import { waitUntil } from '../helpers/waits.js';
import { isRefused } from '../helpers/raw-http.js';
import { makeCertificate } from '../helpers/tls.js';

const apps = join(fixtures, 'apps');

function get(port: number, path: string, options: { tls?: { ca: string; minVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2'; maxVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3' } } = {}): Promise<{ status: number; body: string; protocol: string }> {
  return new Promise((resolve, reject) => {
    const common = { host: '127.0.0.1', port, path, agent: false as const };
    const onResponse = (res: import('node:http').IncomingMessage): void => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, protocol: (res.socket as { getProtocol?: () => string }).getProtocol?.() ?? 'plain' }));
    };
    const req = options.tls === undefined
      ? httpRequest(common, onResponse)
      : httpsRequest({ ...common, ca: options.tls.ca, servername: 'localhost', minVersion: options.tls.minVersion, maxVersion: options.tls.maxVersion }, onResponse);
    req.on('error', reject);
    req.end();
  });
}

test('HTTPS: wsgi.url_scheme=https and HTTPS=on; TLS below 1.2 refused', async () => {
  const { cert, key } = makeCertificate();
  const server = await startServer(['--app', 'suite:app', '-f', apps, '-c', cert, '-k', key], { scheme: 'https' });
  try {
    assert.match(server.stdout(), /^TLS: on/m);
    const ca = readFileSync(cert, 'utf8');
    const answer = await get(server.port, '/echo', { tls: { ca } });
    assert.equal(answer.status, 200);
    const env = (JSON.parse(answer.body) as { environ: Record<string, string> }).environ;
    assert.equal(env['wsgi.url_scheme'], 'https');
    assert.equal(env.HTTPS, 'on');
    assert.equal(env.SERVER_PORT, String(server.port));
    await assert.rejects(get(server.port, '/hello', { tls: { ca, minVersion: 'TLSv1', maxVersion: 'TLSv1.1' } }));
    const modern = await get(server.port, '/hello', { tls: { ca, minVersion: 'TLSv1.2' } });
    assert.equal(modern.status, 200);
  } finally {
    await server.stop();
  }
});

test('-l: one web2py-format line per request in httpserver.log, none lost on graceful stop', async () => {
  const folder = mkdtempSync(join(tmpdir(), 'w2n-access-'));
  // The log goes to the -f folder; the fixture module is found through PYTHONPATH.
  const server = await startServer(['--app', 'suite:app', '-f', folder, '-l'], { env: { PYTHONPATH: apps } });
  const logFile = join(folder, 'httpserver.log');
  assert.match(server.stdout(), new RegExp(`^access log: ${logFile}$`, 'm'));
  const count = 200;
  for (let i = 0; i < count; i += 1) {
    const answer = await get(server.port, i % 2 === 0 ? '/hello' : '/echo/a,b');
    assert.equal(answer.status, 200);
  }
  assert.equal(await server.stop(), 0);
  const lines = readFileSync(logFile, 'utf8').split('\n').filter(Boolean);
  assert.equal(lines.length, count);
  assert.match(lines[0]!, /^127\.0\.0\.1, \d{4}-\d\d-\d\d \d\d:\d\d:\d\d, GET, \/hello, HTTP\/1\.1, 200, \d+\.\d{6}$/);
  assert.match(lines[1]!, /, GET, \/echo\/a%2Cb, HTTP\/1\.1, 200, /);
});

test('-F DIR: one cProfile dump per request, without -l', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'w2n-prof-')), 'created');
  const server = await startServer(['--app', 'suite:app', '-f', apps, '-F', dir]);
  try {
    for (let i = 0; i < 3; i += 1) assert.equal((await get(server.port, '/hello')).status, 200);
  } finally {
    await server.stop();
  }
  // Named as web2py names them (gluon/main.py: "req_%s.prof" % web2py_uuid(), a UUID4 with dashes).
  const dumps = readdirSync(dir).filter((name) => /^req_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.prof$/.test(name));
  assert.equal(dumps.length, 3, readdirSync(dir).join(' '));
});

test('SIGTERM: in-flight requests finish, new connections are refused, exit 0', async () => {
  const server = await startServer(['--app', 'suite:app', '-f', apps]);
  const slow = get(server.port, '/slow?s=1&signal=slow');
  await waitForStarted(server, 'slow');
  const exit = server.stop('SIGTERM');
  await waitForLog(server, /server\.draining/);
  // Refused while the slow request is still in flight: every descriptor of the listening socket
  // (--accept-batch's copies too) is closed, not only the first.
  assert.ok(await isRefused(server.port), 'a new connection is refused while draining');
  const answer = await slow;
  assert.equal(answer.status, 200);
  assert.equal(await exit, 0);
  await assert.rejects(get(server.port, '/hello'));
  assert.match(server.stderr(), /server\.stopped/);
});

test('/health is 503 while the workers start', async () => {
  // A worker that takes a while to import: health must say 503 until it is ready.
  const server = await startServer(['--app', 'slow_import:app', '-f', apps], { readyPattern: /^starting on /m, env: { W2N_FIXTURE_IMPORT_DELAY: '1.5' } });
  try {
    const early = await get(server.port, '/health');
    assert.equal(early.status, 503);
    // A request sent now waits for a worker instead of failing.
    const queued = await get(server.port, '/');
    assert.equal(queued.status, 200);
    assert.equal((await get(server.port, '/health')).status, 200);
  } finally {
    await server.stop();
  }
});

test('no gluon/ and no --app: says so and serves the bundled demo', async () => {
  const empty = mkdtempSync(join(tmpdir(), 'w2n-demo-'));
  const server = await startServer([], { cwd: empty });
  try {
    assert.match(server.stdout(), /demo app: no gluon\/ in/);
    const answer = await get(server.port, '/');
    assert.equal(answer.status, 200);
    assert.match(answer.body, /web2py-on-node/);
  } finally {
    await server.stop();
  }
});

test('a second SIGINT stops at once', async () => {
  const server = await startServer(['--app', 'suite:app', '-f', apps]);
  const agent = new (await import('node:http')).Agent({ keepAlive: true, maxSockets: 1 });
  const healthOnKeptConnection = (): Promise<number> => new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: server.port, path: '/health', agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
  try {
    assert.equal(await healthOnKeptConnection(), 200);
    // Hold the keep-alive connection busy with a slow request so it stays open while draining.
    const slow = get(server.port, '/slow?s=5&signal=slow').catch(() => ({ status: 0, body: '', protocol: '' }));
    await waitForStarted(server, 'slow');
    server.process.kill('SIGINT');
    await waitForLog(server, /server\.draining/);
    const started = Date.now();
    server.process.kill('SIGINT');
    const { code } = await server.exited;
    assert.equal(code, 130);
    assert.ok(Date.now() - started < 3000, 'stopped at once, not after the 5 s request');
    assert.match(server.stderr(), /server\.forced_stop/);
    assert.equal((await slow).status, 0, 'the slow request was cut');
  } finally {
    agent.destroy();
  }
});

test('a worker that keeps dying right after start is replaced with a growing backoff', async () => {
  const state = mkdtempSync(join(tmpdir(), 'w2n-backoff-'));
  const server = await startServer(['--app', 'dies_on_restart:app', '-f', apps, '--processes', '1'], { env: { W2N_FIXTURE_STATE_DIR: state } });
  try {
    assert.equal((await get(server.port, '/')).status, 200);
    assert.equal((await get(server.port, '/exit')).status, 502);
    // Replacements now die at import: the supervisor must wait longer and longer, not spin.
    // A deadline, not a timing: each replacement takes a Python start (seconds on a loaded machine).
    await waitForLog(server, /worker\.respawn_scheduled.*delayMs=400/, { timeoutMs: 30_000 });
    const delays = [...server.stderr().matchAll(/worker\.respawn_scheduled.* delayMs=(\d+)/g)].map((m) => Number(m[1]));
    assert.deepEqual(delays.slice(0, 3), [200, 400, 800].slice(0, delays.slice(0, 3).length));
    assert.ok(delays.length >= 2, `backoff delays seen: ${delays.join(',')}`);
    const spawned = (server.stderr().match(/worker\.exited|worker\.died/g) ?? []).length;
    assert.ok(spawned < 10, `no respawn storm (${spawned} exits)`);
    // The front itself lives on and answers /health (503: no worker is ready).
    assert.equal((await get(server.port, '/health')).status, 503);
  } finally {
    await server.stop();
  }
});

test('SIGUSR1 reopens the access log (logrotate: rename, signal, new lines in a new file)', async () => {
  const { renameSync } = await import('node:fs');
  const folder = mkdtempSync(join(tmpdir(), 'w2n-rotate-'));
  const server = await startServer(['--app', 'suite:app', '-f', folder, '-l'], { env: { PYTHONPATH: apps } });
  const logFile = join(folder, 'httpserver.log');
  try {
    assert.equal((await get(server.port, '/hello')).status, 200);
    await waitUntil('the access log line in the file', () => existsSync(logFile) && readFileSync(logFile, 'utf8').includes(', GET, /hello, '));
    renameSync(logFile, `${logFile}.1`);
    server.process.kill('SIGUSR1');
    await waitForLog(server, /log\.reopened/, { timeoutMs: 5000 });
    assert.equal((await get(server.port, '/echo/after')).status, 200);
  } finally {
    assert.equal(await server.stop(), 0);
  }
  const rotated = readFileSync(`${logFile}.1`, 'utf8').trim().split('\n');
  const fresh = readFileSync(logFile, 'utf8').trim().split('\n');
  assert.equal(rotated.length, 1);
  assert.match(rotated[0]!, /, GET, \/hello, /);
  assert.equal(fresh.length, 1);
  assert.match(fresh[0]!, /, GET, \/echo\/after, /);
});

test('--queue-timeout: a request that waits too long for a worker gets 503 with Retry-After, before the busy one ends', async () => {
  const server = await startServer(['--app', 'suite:app', '-f', apps, '--processes', '1', '--worker-class', 'sync', '--queue-timeout', '0.3']);
  try {
    const order: string[] = [];
    const slow = get(server.port, '/slow?s=2&signal=slow').then((a) => { order.push('slow'); return a; });
    await waitForStarted(server, 'slow');
    const waited = await new Promise<{ status: number; retryAfter: string | undefined }>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: server.port, path: '/hello', agent: false }, (res) => {
        res.resume();
        res.on('end', () => { order.push('queued'); resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string | undefined }); });
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(waited.status, 503);
    assert.equal(waited.retryAfter, '1');
    assert.equal((await slow).status, 200);
    assert.deepEqual(order, ['queued', 'slow'], 'the queued request was answered while the worker was still busy');
    assert.match(server.stderr(), /queue\.full.*why="queue timeout"/);
  } finally {
    await server.stop();
  }
});
