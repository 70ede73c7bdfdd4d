/**
 * No client can take the server down: byte sequences that once reached a bug of the front (and
 * ended the process with every request in it) get a clear answer instead, on every kind of
 * listener (plain TCP, TLS, Unix socket), and the server goes on serving.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { fixtures, startServer, waitForLog, type StartedServer } from '../helpers/server.js';
import { parseResponses } from '../helpers/raw-http.js';
import { makeCertificate } from '../helpers/tls.js';
import { downloadWhileShrinking } from '../helpers/shrinking-file.js';

const apps = join(fixtures, 'apps');
const certificate = makeCertificate();
const scratch = mkdtempSync(join(tmpdir(), 'w2n-robust-'));
const socketPath = join(scratch, 'front.sock');
let server: StartedServer;
let plainPort = 0;
let tlsPort = 0;

type Target = 'plain' | 'tls' | 'unix';
const targets: Target[] = ['plain', 'tls', 'unix'];

before(async () => {
  server = await startServer([
    '--app', 'suite:app', '-f', apps, '--processes', '1', '--log-format', 'json',
    '--interfaces', `127.0.0.1:0;127.0.0.1:0:${certificate.key}:${certificate.cert}`, '--unix-socket', socketPath,
  ]);
  const ports = [...server.stdout().matchAll(/^starting on 127\.0\.0\.1:(\d+)\.\.\.$/gm)].map((match) => Number(match[1]));
  [plainPort, tlsPort] = ports as [number, number];
});
after(async () => {
  await server.stop();
  rmSync(scratch, { recursive: true, force: true });
  rmSync(certificate.dir, { recursive: true, force: true });
});

function open(target: Target): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = target === 'plain'
      ? netConnect({ host: '127.0.0.1', port: plainPort }, () => resolve(socket))
      : target === 'unix'
        ? netConnect({ path: socketPath }, () => resolve(socket))
        : tlsConnect({
          host: '127.0.0.1', port: tlsPort, ca: readFileSync(certificate.cert), servername: 'localhost', ALPNProtocols: ['http/1.1'],
        }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Writes `bytes` in one packet; everything the server sends until it closes (or `timeoutMs`). */
async function exchange(target: Target, bytes: string, timeoutMs = 5_000): Promise<{ text: string; closed: boolean }> {
  const socket = await open(target);
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => {});
  socket.write(bytes);
  const closed = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    socket.once('close', () => { clearTimeout(timer); resolve(true); });
  });
  socket.destroy();
  return { text: Buffer.concat(chunks).toString('latin1'), closed };
}

function frontBugs(): number {
  return server.stderr().split('\n').filter((line) => line.includes('"event":"front.bug"')).length;
}

for (const target of targets) {
  test(`${target}: \`GET / HTTP/2.0\` on an HTTP/1.x connection gets 505 and is closed; the process lives on`, async () => {
    const { text, closed } = await exchange(target, 'GET / HTTP/2.0\r\nHost: a\r\n\r\n');
    assert.match(text, /^HTTP\/1\.1 505 HTTP Version Not Supported\r\n/);
    assert.match(text, /\r\nConnection: close\r\n/);
    assert.ok(closed, 'the connection is closed');
    assert.equal(server.process.exitCode, null, 'the server is still running');
    // The same listener still serves.
    const next = await exchange(target, 'GET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    assert.match(next.text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.equal(frontBugs(), 0, 'nothing reached a bug');
  });
}

test('other versions on an HTTP/1.x connection: HTTP/0.9 and HTTP/2.0 with a body, pipelined behind a good request: answered in order, then 505', async () => {
  const { text, closed } = await exchange('plain', 'GET /hello HTTP/1.1\r\nHost: a\r\n\r\n'
    + 'GET / HTTP/0.9\r\nHost: a\r\n\r\n');
  const { responses } = parseResponses(Buffer.from(text, 'latin1'), ['GET', 'GET']);
  assert.deepEqual(responses.map((response) => response.status), [200, 505]);
  assert.ok(closed);
  const withBody = await exchange('tls', 'POST / HTTP/2.0\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc');
  assert.match(withBody.text, /^HTTP\/1\.1 505 /);
  assert.ok(!withBody.text.includes('endAfterHeaders'), 'no internals in the answer');
  assert.equal(server.process.exitCode, null);
});

function logged(event: string): number {
  return server.stderr().split('\n').filter((line) => line.includes(`"event":"${event}"`)).length;
}

test('a wsgi.file_wrapper file that shrinks while a client downloads it: that connection is cut (never reused), logged; the process lives on', async () => {
  const big = join(scratch, 'shrinking.bin');
  writeFileSync(big, '');
  truncateSync(big, 64 * 1024 * 1024); // sparse: no disk written
  const cuts = logged('response.cut');
  const download = await downloadWhileShrinking(plainPort, `GET /filewrap?path=${encodeURIComponent(big)} HTTP/1.1\r\nHost: a\r\n\r\n`
    + 'GET /hello HTTP/1.1\r\nHost: a\r\n\r\n', big, 32 * 1024 * 1024);
  assert.equal(download.contentLength, 64 * 1024 * 1024);
  assert.ok(download.closed);
  assert.ok(download.bodyBytes < download.contentLength, 'a short body is never made to look whole');
  assert.ok(!download.text.includes('Hello'), 'the next answer never follows a short body');
  assert.equal(server.process.exitCode, null, 'the server is still running');
  // The front's log reaches us through a pipe of its own: the line may come just after the close.
  await waitForLog(server, /"event":"response\.cut"/, { times: cuts + 1 });
  assert.equal(logged('response.cut'), cuts + 1);
  const next = await exchange('plain', 'GET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.match(next.text, /^HTTP\/1\.1 200 OK\r\n/);
});

/** [what the app does, path, methods answered before the close] */
const mismatches: [string, string][] = [
  ['a whole body shorter than its Content-Length', '/framing/list?n=5&declared=10'],
  ['a whole body longer than its Content-Length', '/framing/list?n=10&declared=5'],
  ['a streamed body longer than its Content-Length, before anything was sent', '/framing/gen?n=100&declared=10'],
  ['a head with Content-Length and no body at all', '/framing/empty?declared=10'],
];

for (const [name, path] of mismatches) {
  test(`${name}: a clean 500, and the connection carries on`, async () => {
    const { text } = await exchange('plain', `GET ${path} HTTP/1.1\r\nHost: a\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
    const { responses } = parseResponses(Buffer.from(text, 'latin1'), ['GET', 'GET']);
    assert.deepEqual(responses.map((response) => response.status), [500, 200], text.slice(0, 400));
    assert.equal(responses[0]!.body.toString(), 'Internal Server Error\n');
  });
}

test('a streamed body that turns out longer or shorter than its Content-Length once sending began: the connection is cut', async () => {
  for (const path of ['/framing/gen?n=200000&declared=100000', '/framing/gen?n=100000&declared=200000']) {
    const { text, closed } = await exchange('plain', `GET ${path} HTTP/1.1\r\nHost: a\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\n\r\n`);
    assert.ok(closed, path);
    // Cut: what was still buffered may be lost with the connection, but never completed.
    assert.ok(text === '' || text.startsWith('HTTP/1.1 200 OK\r\n'), text.slice(0, 200));
    const bodyBytes = text === '' ? 0 : text.length - text.indexOf('\r\n\r\n') - 4;
    assert.ok(bodyBytes < Number(/declared=(\d+)/.exec(path)![1]), `${path}: ${bodyBytes} bytes, never a whole-looking body`);
    assert.ok(!text.includes('Hello'), 'the next answer never follows');
  }
  assert.equal(server.process.exitCode, null);
});

test('a 413 for a request pipelined behind a slow one comes after the slow one\'s answer', async () => {
  const { text, closed } = await exchange('plain', 'GET /slow?s=0.5 HTTP/1.1\r\nHost: a\r\n\r\n'
    + 'POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5000000000\r\n\r\nabc');
  const { responses } = parseResponses(Buffer.from(text, 'latin1'), ['GET', 'POST']);
  assert.deepEqual(responses.map((response) => response.status), [200, 413], text.slice(0, 600));
  assert.equal(responses[0]!.body.toString(), 'slept 0.5');
  assert.ok(closed);
});

for (const target of ['plain', 'tls'] as const) {
  test(`${target}: an Upgrade request is served as an ordinary one, and the request pipelined behind it in the same packet too`, async () => {
    const { text } = await exchange(target, 'GET /echo/up HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'
      + 'GET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    const { responses } = parseResponses(Buffer.from(text, 'latin1'), ['GET', 'GET']);
    assert.deepEqual(responses.map((response) => response.status), [200, 200], text.slice(0, 600));
    const environ = (JSON.parse(responses[0]!.body.toString()) as { environ: Record<string, string> }).environ;
    assert.equal(environ.HTTP_UPGRADE, 'websocket', 'the application sees the Upgrade header');
    assert.equal(environ.PATH_INFO, '/echo/up');
    assert.equal(responses[1]!.body.toString(), 'Hello, World!');
  });
}

test('CONNECT: 400 and closed (Node alone resets the connection without an answer)', async () => {
  const { text, closed } = await exchange('plain', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
  assert.match(text, /^HTTP\/1\.1 400 Bad Request\r\n/);
  assert.ok(closed);
});

test('malformed input: 400 whose body names no parser internals', async () => {
  for (const bytes of ['GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n', 'G\x00T / HTTP/1.1\r\n\r\n', 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n']) {
    const { text, closed } = await exchange('plain', bytes);
    assert.match(text, /^HTTP\/1\.1 400 Bad Request\r\n/, JSON.stringify(bytes));
    assert.ok(text.endsWith('\r\n\r\nBad Request: malformed request\n'), text);
    assert.doesNotMatch(text, /HPE_|llhttp|ERR_/);
    assert.ok(closed);
  }
});
