/**
 * The front's guard (src/front/guard.ts) with real servers: a listener that throws costs its own
 * request (500, or a cut once the answer started) or its own connection, is logged once as
 * `front.bug` with its stack and counted in `w2n_front_bugs_total`; the process and every other
 * request carry on (an escaped exception here would end the test process).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { EventEmitter, once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { connect as http2Connect, createSecureServer } from 'node:http2';
import { FrontGuard } from '../../src/front/guard.js';
import { createLogger } from '../../src/observability/log.js';
import { Metrics } from '../../src/observability/metrics.js';
import { rawRequest } from '../helpers/raw-http.js';
import { makeCertificate } from '../helpers/tls.js';

function setUp(): { guard: FrontGuard; bugs: () => Record<string, unknown>[]; metrics: Metrics } {
  const lines: string[] = [];
  const log = createLogger({ level: 'info', format: 'json', destination: { write: (line) => lines.push(line) } });
  const metrics = new Metrics();
  const bugs = (): Record<string, unknown>[] => lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((record) => record.event === 'front.bug');
  return { guard: new FrontGuard(log, metrics), bugs, metrics };
}

async function listening(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => { body += chunk.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** A handler with a bug on some paths, as the front's was on `GET / HTTP/2.0`. */
function buggyHandler(req: IncomingMessage, res: ServerResponse): void {
  if (req.url === '/throw') throw new TypeError('Cannot read properties of undefined (reading \'endAfterHeaders\')');
  if (req.url === '/throw-after-head') {
    res.writeHead(200, { 'Content-Length': '100' });
    res.write('partial');
    throw new Error('bug after the head went out');
  }
  res.end('fine\n');
}

test('a request handler that throws: 500 before the head, a cut after it; logged once with its stack, counted; the server carries on', async () => {
  const { guard, bugs, metrics } = setUp();
  const server = createServer(buggyHandler);
  guard.watch(server, 'server');
  const port = await listening(server);
  try {
    const answer = await get(port, '/throw');
    assert.equal(answer.status, 500);
    assert.equal(answer.body, 'Internal Server Error\n', 'no internals in the body');
    assert.equal(bugs().length, 1);
    assert.equal(bugs()[0]!.where, 'server.request');
    assert.match(String(bugs()[0]!.traceback), /TypeError: Cannot read properties[\s\S]*at Server.buggyHandler/);

    // After the head: the client must not take the short body for a whole one.
    const cut = await rawRequest(port, 'GET /throw-after-head HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.doesNotMatch(cut.response, / 500 /, 'no second answer after the first one started');
    assert.ok(cut.response === '' || /^HTTP\/1\.1 200 OK[\s\S]*\r\n\r\n(?:partial)?$/.test(cut.response), JSON.stringify(cut.response));
    assert.equal(bugs().length, 2);

    assert.deepEqual(await get(port, '/fine'), { status: 200, body: 'fine\n' });
    assert.match(await metrics.render(), /^w2n_front_bugs_total\{where="server.request"\} 2$/m);
  } finally {
    server.close();
    server.closeAllConnections();
  }
});

test('a connection or clientError listener that throws: only that connection is destroyed', async () => {
  const { guard, bugs, metrics } = setUp();
  const server = createServer((_req, res) => res.end('fine\n'));
  let connections = 0;
  server.on('connection', () => {
    connections += 1;
    if (connections === 1) throw new Error('bug in a connection listener');
  });
  server.on('clientError', () => { throw new Error('bug in clientError'); });
  guard.watch(server, 'server');
  const port = await listening(server);
  try {
    const first = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.equal(first.response, '', 'the connection whose listener failed is destroyed');
    const bad = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n');
    assert.equal(bad.response, '');
    assert.deepEqual(await get(port, '/'), { status: 200, body: 'fine\n' });
    assert.deepEqual(bugs().map((bug) => bug.where), ['server.connection', 'server.clientError']);
    assert.match(await metrics.render(), /^w2n_front_bugs_total\{where="server.clientError"\} 1$/m);
  } finally {
    server.close();
    server.closeAllConnections();
  }
});

test('HTTP/2: a throwing request handler or session listener costs its own stream only (500), the session carries on', async () => {
  const { guard, bugs } = setUp();
  const certificate = makeCertificate();
  const server = createSecureServer({ cert: readFileSync(certificate.cert), key: readFileSync(certificate.key) });
  server.on('request', (req, res) => {
    if (req.url === '/throw') throw new Error('bug in an HTTP/2 request');
    res.end('fine\n');
  });
  let sessions = 0;
  server.on('session', (session) => {
    sessions += 1;
    // Before Node's own listener, which hands the stream to the request handler.
    if (sessions === 2) session.prependOnceListener('stream', () => { throw new Error('bug in a session stream listener'); });
  });
  guard.watch(server, 'server');
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const h2get = (client: ReturnType<typeof http2Connect>, path: string): Promise<{ status: number; body: string; error?: string }> =>
    new Promise((resolve) => {
      const stream = client.request({ ':path': path });
      let status = 0;
      let body = '';
      stream.on('response', (headers) => { status = Number(headers[':status']); });
      stream.on('data', (chunk: Buffer) => { body += chunk.toString(); });
      stream.on('end', () => resolve({ status, body }));
      stream.on('error', (error: Error) => resolve({ status, body, error: error.message }));
    });
  const connectTo = (): ReturnType<typeof http2Connect> => {
    const client = http2Connect(`https://127.0.0.1:${port}`, { ca: readFileSync(certificate.cert), servername: 'localhost' });
    client.on('error', () => {});
    return client;
  };
  const first = connectTo();
  const second = connectTo();
  try {
    assert.deepEqual(await h2get(first, '/throw'), { status: 500, body: 'Internal Server Error\n' });
    assert.deepEqual(await h2get(first, '/'), { status: 200, body: 'fine\n' }, 'the same session carries on');
    assert.deepEqual(await h2get(second, '/'), { status: 500, body: 'Internal Server Error\n' });
    assert.deepEqual(await h2get(second, '/'), { status: 200, body: 'fine\n' });
    assert.deepEqual(bugs().map((bug) => bug.where), ['server.request', 'http2.session.stream']);
  } finally {
    first.destroy();
    second.destroy();
    server.close();
  }
});

test('a watched body: a throwing data listener calls the owner\'s containment once; a throwing containment is reported, not thrown', () => {
  const { guard, bugs } = setUp();
  const body = new EventEmitter();
  let contained = 0;
  guard.watch(body, 'request.body', () => { contained += 1; });
  body.on('data', () => { throw new Error('bug in a body listener'); });
  assert.equal(body.emit('data', Buffer.from('abc')), true);
  assert.equal(contained, 1);
  const other = new EventEmitter();
  guard.watch(other, 'other', () => { throw new Error('bug in the containment'); });
  other.on('x', () => { throw new Error('first'); });
  other.emit('x');
  assert.deepEqual(bugs().map((bug) => bug.where), ['request.body.data', 'other.x', 'other.x.contain']);
});
