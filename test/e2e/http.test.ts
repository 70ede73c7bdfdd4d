/**
 * Black-box: the CLI on port 0 with the fixture apps (test/fixtures/apps/suite.py), spoken to
 * over real sockets. Environ facts, bodies both ways, failures of the app and of workers, bad
 * HTTP bytes, and the server living on after each.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixtures, startServer, waitForLog, waitForStarted, type StartedServer } from '../helpers/server.js';
import { rawRequest } from '../helpers/raw-http.js';

const apps = join(fixtures, 'apps');
let server: StartedServer;

before(async () => {
  server = await startServer(['--app', 'suite:app', '-f', apps, '--threads', '4'], { env: { W2N_TEST_MARKER_SECRET: 'must-not-leak' } });
});
after(async () => {
  await server.stop();
});

interface Answer { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer; localPort: number }

function call(path: string, options: { method?: string; headers?: Record<string, string>; body?: Buffer | string; chunked?: boolean } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: server.port, path, method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), localPort: req.socket?.localPort ?? 0 }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (options.body !== undefined) {
      if (options.chunked === true) {
        const body = Buffer.from(options.body);
        for (let i = 0; i < body.length; i += 1000) req.write(body.subarray(i, i + 1000));
      } else {
        req.write(options.body);
      }
    }
    req.end();
  });
}

async function echo(path = '/echo', options: Parameters<typeof call>[1] = {}): Promise<Record<string, string> & { _localPort: string }> {
  const answer = await call(path, options);
  assert.equal(answer.status, 200, answer.body.toString());
  const parsed = JSON.parse(answer.body.toString('utf8')) as { environ: Record<string, string>; body_bytes: number; body_sha256: string };
  return { ...parsed.environ, body_length: String(parsed.body_bytes), body_sha256: parsed.body_sha256, _localPort: String(answer.localPort) };
}

test('environ: CGI facts, the real client address, the listening port, plain http', async () => {
  const env = await echo('/echo/a/b?x=1&y=2', { headers: { 'X-Custom': 'yes' } });
  assert.equal(env.REQUEST_METHOD, 'GET');
  assert.equal(env.PATH_INFO, '/echo/a/b');
  assert.equal(env.QUERY_STRING, 'x=1&y=2');
  assert.equal(env.SCRIPT_NAME, '');
  assert.equal(env.SERVER_PROTOCOL, 'HTTP/1.1');
  assert.equal(env.SERVER_PORT, String(server.port));
  assert.equal(env.REMOTE_ADDR, '127.0.0.1');
  assert.equal(env.REMOTE_PORT, env._localPort);
  assert.equal(env['wsgi.url_scheme'], 'http');
  assert.equal(env.HTTPS, undefined);
  assert.equal(env.HTTP_X_CUSTOM, 'yes');
  assert.equal(env.HTTP_HOST, `127.0.0.1:${server.port}`);
});

test('environ: percent-decoded PATH_INFO as latin-1 bytes, raw REQUEST_URI kept', async () => {
  const env = await echo('/echo/caf%C3%A9%20x');
  assert.equal(env.PATH_INFO, '/echo/caf\u00c3\u00a9 x');
  assert.equal(env.REQUEST_URI, '/echo/caf%C3%A9%20x');
});

test('environ: forwarding headers and underscore names never reach the app', async () => {
  const env = await echo('/echo', {
    headers: {
      'X-Forwarded-Proto': 'https', 'X-Forwarded-For': '10.0.0.1', 'X-Forwarded-Host': 'evil', Forwarded: 'for=1.2.3.4;proto=https',
      'X_Forwarded_Proto': 'https', 'X-Real': 'kept',
    },
  });
  for (const key of ['HTTP_X_FORWARDED_PROTO', 'HTTP_X_FORWARDED_FOR', 'HTTP_X_FORWARDED_HOST', 'HTTP_FORWARDED']) {
    assert.equal(env[key], undefined, `${key} dropped`);
  }
  assert.equal(env['wsgi.url_scheme'], 'http');
  assert.equal(env.HTTP_X_REAL, 'kept');
});

test('environ: never copies the process environment', async () => {
  const env = await echo();
  for (const key of ['PATH', 'HOME', 'W2N_TEST_MARKER_SECRET']) assert.equal(env[key], undefined, key);
  assert.ok(!JSON.stringify(env).includes('must-not-leak'));
});

test('environ: repeated headers are joined; cookies with "; "', async () => {
  const answer = await rawRequest(server.port, `GET /echo HTTP/1.1\r\nHost: x\r\nCookie: a=1\r\nCookie: b=2\r\nX-Multi: 1\r\nX-Multi: 2\r\nConnection: close\r\n\r\n`);
  const env = (JSON.parse(answer.response.slice(answer.response.indexOf('\r\n\r\n') + 4)) as { environ: Record<string, string> }).environ;
  assert.equal(env.HTTP_COOKIE, 'a=1; b=2');
  assert.equal(env.HTTP_X_MULTI, '1,2');
});

test('request body with Content-Length reaches the app whole', async () => {
  const body = Buffer.alloc(700_000, 'a');
  const env = await echo('/echo', { method: 'POST', body, headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(body.length) } });
  assert.equal(env.CONTENT_LENGTH, String(body.length));
  assert.equal(env.CONTENT_TYPE, 'application/octet-stream');
  assert.equal(String(env.body_length), String(body.length));
  assert.equal(env.body_sha256, createHash('sha256').update(body).digest('hex'));
});

test('chunked request body is read to its end', async () => {
  const body = Buffer.from('x'.repeat(50_000));
  const answer = await call('/upload', { method: 'POST', body, chunked: true });
  assert.equal(answer.status, 200);
  const info = JSON.parse(answer.body.toString()) as { bytes: number; sha256: string };
  assert.equal(info.bytes, body.length);
  assert.equal(info.sha256, createHash('sha256').update(body).digest('hex'));
});

test('hello: one-frame answer with Content-Length', async () => {
  const answer = await call('/hello');
  assert.equal(answer.status, 200);
  assert.equal(answer.body.toString(), 'Hello, World!');
  assert.equal(answer.headers['content-length'], '13');
});

test('streamed download without Content-Length arrives whole (chunked)', async () => {
  const answer = await call('/stream?n=3000000');
  assert.equal(answer.status, 200);
  assert.equal(answer.body.length, 3_000_000);
  assert.equal(answer.headers['transfer-encoding'], 'chunked');
});

test('streamed download with Content-Length', async () => {
  const answer = await call('/stream?n=2000000&cl=1');
  assert.equal(answer.body.length, 2_000_000);
  assert.equal(answer.headers['content-length'], '2000000');
});

test('write() callable', async () => {
  const answer = await call('/writer');
  assert.equal(answer.status, 200);
  assert.ok(answer.body.length > 0);
});

test('wsgi.file_wrapper: the front streams the file itself', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'w2n-fw-'));
  const file = join(dir, 'data.bin');
  const content = Buffer.alloc(5_000_000);
  for (let i = 0; i < content.length; i += 1) content[i] = i % 251;
  writeFileSync(file, content);
  const answer = await call(`/filewrap?path=${encodeURIComponent(file)}`);
  assert.equal(answer.status, 200);
  assert.equal(answer.headers['content-length'], String(content.length));
  assert.ok(answer.body.equals(content));
});

test('an app that raises: 500, short body, traceback in the server log, worker lives on', async () => {
  const before = await call('/crash/alive');
  const answer = await call('/boom');
  assert.equal(answer.status, 500);
  assert.equal(answer.body.toString(), 'Internal Server Error\n');
  const after = await call('/hello');
  assert.equal(after.status, 200);
  assert.match(server.stderr(), /request\.failed/);
  assert.match(server.stderr(), /ZeroDivisionError/);
  assert.equal(before.status, 200);
  assert.doesNotMatch(server.stderr(), /worker\.died.*\n(?:.*\n)*.*ZeroDivisionError/, 'no worker died for an exception');
});

/** An interpreter that has gevent, for the gevent class's runs (Debian's python3-gevent), or null. */
const geventPython = ['/usr/bin/python3', 'python3'].find((python) => spawnSync(python, ['-c', 'import gevent'], { stdio: 'ignore' }).status === 0) ?? null;

for (const workerClass of ['thread', 'gevent'] as const) {
  const classArgs = workerClass === 'gevent' ? ['--python', geventPython ?? 'python3', '--worker-class', 'gevent'] : ['--worker-class', 'thread'];
  test(`${workerClass}: an app yielding str gets its text encoded, one app.str_body warning per path, and a failure's traceback is logged once (issue 14)`,
    { skip: workerClass === 'gevent' && geventPython === null && 'no Python here has gevent' }, async () => {
      // One process: its stderr is one ordered stream, so once a later line is in the log, every earlier one is too.
      const own = await startServer(['--app', 'suite:app', '-f', apps, '--processes', '1', ...classArgs]);
      try {
        assert.equal((await fetch(own.url('/boom'))).status, 500);
        for (const path of ['/text/a', '/text/a?text=caf%C3%A9&charset=latin-1', '/text/b?kind=list']) {
          const answer = await fetch(own.url(path));
          assert.equal(answer.status, 200, path);
          assert.ok((await answer.arrayBuffer()).byteLength > 0, path);
        }
        const latin1 = Buffer.from(await (await fetch(own.url('/text/c?text=caf%C3%A9&charset=latin-1'))).arrayBuffer());
        assert.deepEqual(latin1, Buffer.from('caf\xe9', 'latin1'));
        await waitForLog(own, /WARN .*app\.str_body .*path=\/text\/c/);
        await waitForLog(own, /request\.failed/);
        const log = own.stderr();
        const warned = log.split('\n').filter((line) => line.includes('app.str_body')).map((line) => /path=(\S+)/.exec(line)?.[1]);
        assert.deepEqual(warned, ['/text/a', '/text/b', '/text/c']);
        assert.equal(log.split('Traceback (most recent call last)').length - 1, 1, `one traceback in:\n${log}`);
        assert.doesNotMatch(log, /worker\.output.*(ZeroDivisionError|Traceback)/);
        assert.doesNotMatch(log, /w2n-event/, 'event lines are logged as their events, not as worker output');
      } finally {
        await own.stop();
      }
    });
}

test('headers that break the rules: 500, the server lives', async () => {
  for (const kind of ['crlf', 'status', 'twice']) {
    const answer = await call(`/badheaders?kind=${kind}`);
    assert.equal(answer.status, 500, kind);
  }
  assert.equal((await call('/hello')).status, 200);
});

test('a worker that dies: 502 for its own requests only, a fresh worker replaces it', async () => {
  const readyBefore = server.stderr().split('\n').filter((l) => l.includes('worker.ready')).length;
  const slow = Array.from({ length: 6 }, () => call('/slow?s=0.8&signal=before-crash'));
  await waitForStarted(server, 'before-crash', { times: 6 }); // in flight on both workers
  const crash = await call('/crash/exit');
  assert.equal(crash.status, 502);
  const results = await Promise.all(slow);
  const statuses = results.map((r) => r.status);
  for (const status of statuses) assert.ok(status === 200 || status === 502, `status ${status}`);
  assert.ok(statuses.includes(200), 'requests on the other worker were unaffected');
  // Every 502 is logged as a request on the dead worker; nothing else failed. The front's log
  // lines reach us through a pipe of their own, so they may come just after the answers.
  const expected = 1 + statuses.filter((s) => s === 502).length;
  await waitForLog(server, /request\.worker_died/, { times: expected });
  const diedLines = server.stderr().split('\n').filter((l) => l.includes('request.worker_died')).length;
  assert.equal(diedLines, expected);
  // Capacity returns: a fresh worker is ready, and both workers answer again.
  await waitForLog(server, /worker\.ready/, { times: readyBefore + 1 });
  const pids = new Set<string>();
  for (let i = 0; i < 40 && pids.size < 2; i += 1) pids.add((await call('/crash/alive')).body.toString());
  assert.equal(pids.size, 2);
});

test('a segfault is the same: 502, replaced', async () => {
  const crash = await call('/crash/segv');
  assert.equal(crash.status, 502);
  assert.equal((await call('/hello')).status, 200);
  assert.match(server.stderr(), /SIGSEGV/);
});

// Smuggling (ambiguous framing, Host rules) is tested strictly in smuggling.test.ts, size and
// count limits in limits.test.ts; here, that other bad input gets its answer and the server lives.
test('malformed HTTP: 400, connection closed, server lives', async () => {
  const cases: [string, RegExp][] = [
    ['garbage\r\n\r\n', /^HTTP\/1\.1 400 /],
    ['GET /echo HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n', /^HTTP\/1\.1 400 /],
    ['GET /echo/%00 HTTP/1.1\r\nHost: x\r\n\r\n', /^HTTP\/1\.1 400 /],
  ];
  for (const [bytes, expected] of cases) {
    const { response, closedByServer } = await rawRequest(server.port, bytes);
    assert.match(response, expected, JSON.stringify(bytes.slice(0, 60)));
    assert.ok(closedByServer || response.length > 0, 'connection closed');
    assert.match(response, /connection: close/i, 'says it closes');
  }
  assert.equal((await call('/hello')).status, 200);
});

test('/health: 200 when workers are ready', async () => {
  const answer = await call('/health');
  assert.equal(answer.status, 200);
  assert.equal(answer.body.toString(), 'OK\n');
});

test('HEAD sends no body', async () => {
  const { response } = await rawRequest(server.port, 'HEAD /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.match(response, /^HTTP\/1\.1 200 /);
  assert.ok(response.endsWith('\r\n\r\n'), 'nothing after the head');
});
