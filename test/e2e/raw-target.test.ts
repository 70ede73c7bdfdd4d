/**
 * Raw bytes ≥ 0x80 in the request target (front/raw-target-bytes.ts): served, and given to the
 * application as PEP 3333 says (one latin-1 code point per byte in PATH_INFO, QUERY_STRING,
 * REQUEST_URI; what gevent's pywsgi gives too), over HTTP/1.1 (alone, pipelined, after a body) and
 * HTTP/2; bodies and headers untouched; message boundaries stay llhttp's (a body that looks like
 * such a request is never served as one); what is still refused gets a 400 that names no parser
 * internals, logged at debug with its reason.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { connect as http2Connect } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { fixtures, startServer, waitForLog, type StartedServer } from '../helpers/server.js';
import { parseResponses, rawRequest, RawConnection } from '../helpers/raw-http.js';
import { makeCertificate } from '../helpers/tls.js';

const apps = join(fixtures, 'apps');
let server: StartedServer;
const certificate = makeCertificate();
const tlsArgs = ['-c', certificate.cert, '-k', certificate.key];

before(async () => {
  server = await startServer(['--app', 'suite:app', '-f', apps, '--processes', '1', '--log-level', 'debug', '--log-format', 'json']);
});
after(async () => {
  await server.stop();
});

const latin1 = (text: string): Buffer => Buffer.from(text, 'latin1');
const H = 'Host: x\r\n';

interface Echoed { environ: Record<string, string>; body_bytes: number; body_sha256: string }

/** Sends `bytes` on one connection and parses the answers, in order. */
async function exchange(bytes: Buffer, methods: string[]): Promise<{ status: number; body: Buffer }[]> {
  const { response } = await rawRequest(server.port, bytes, { endAfterWrite: false });
  const { responses } = parseResponses(latin1(response), methods);
  return responses.map((r) => ({ status: r.status, body: r.body }));
}

function pick(environ: Record<string, string>): string[] {
  return [environ.PATH_INFO!, environ.QUERY_STRING!, environ.REQUEST_URI!];
}

function echoed(body: Buffer): Echoed {
  return JSON.parse(body.toString('utf8')) as Echoed;
}

test('raw UTF-8 bytes in path and query reach the environ as latin-1 code points, one per byte', async () => {
  // /echo/ü?q=ü, UTF-8 encoded, unescaped, as curl sends `?q=ü`.
  const [answer] = await exchange(Buffer.concat([latin1('GET /echo/'), Buffer.from('ü?q=ü', 'utf8'), latin1(` HTTP/1.1\r\n${H}Connection: close\r\n\r\n`)]), ['GET']);
  assert.equal(answer!.status, 200);
  const { environ } = echoed(answer!.body);
  assert.equal(environ.PATH_INFO, '/echo/\u00c3\u00bc');
  assert.equal(environ.QUERY_STRING, 'q=\u00c3\u00bc');
  assert.equal(environ.REQUEST_URI, '/echo/\u00c3\u00bc?q=\u00c3\u00bc');
});

test('raw latin-1 bytes, and escapes beside them, are kept apart', async () => {
  const [answer] = await exchange(latin1(`GET /echo/caf\xe9%20x?q=\xfc&r=%FC HTTP/1.1\r\n${H}Connection: close\r\n\r\n`), ['GET']);
  assert.equal(answer!.status, 200);
  const { environ } = echoed(answer!.body);
  assert.equal(environ.PATH_INFO, '/echo/caf\u00e9 x');
  assert.equal(environ.QUERY_STRING, 'q=\u00fc&r=%FC');
  assert.equal(environ.REQUEST_URI, '/echo/caf\xe9%20x?q=\xfc&r=%FC');
});

test('pipelined: raw targets between ASCII ones, and right after a body that does not end in LF; bodies untouched', async () => {
  const body = latin1('ab\xffc\xe9');
  const bytes = Buffer.concat([
    latin1(`GET /echo/one HTTP/1.1\r\n${H}\r\n`),
    latin1(`POST /echo/p\xe9 HTTP/1.1\r\n${H}Content-Length: ${body.length}\r\n\r\n`), body,
    latin1(`GET /echo/t\xe9?x=\xe9 HTTP/1.1\r\n${H}X-Name: \xe9t\xe9\r\n\r\n`),
    latin1(`GET /echo/last HTTP/1.1\r\n${H}Connection: close\r\n\r\n`),
  ]);
  const answers = await exchange(bytes, ['GET', 'POST', 'GET', 'GET']);
  assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200]);
  const [one, post, raw, last] = answers.map((a) => echoed(a.body));
  assert.equal(one!.environ.PATH_INFO, '/echo/one');
  assert.equal(post!.environ.PATH_INFO, '/echo/p\u00e9');
  assert.equal(post!.body_bytes, body.length);
  assert.equal(post!.body_sha256, createHash('sha256').update(body).digest('hex'));
  assert.equal(raw!.environ.PATH_INFO, '/echo/t\u00e9');
  assert.equal(raw!.environ.QUERY_STRING, 'x=\u00e9');
  assert.equal(raw!.environ.HTTP_X_NAME, '\u00e9t\u00e9');
  assert.equal(last!.environ.PATH_INFO, '/echo/last');
});

test('many raw targets pipelined in one write behind an Upgrade request with one: every one answered, in order', async () => {
  // upgrade.ts serves an Upgrade request as an ordinary one and keeps the bytes after it (Node
  // hands them over from the read, which the recovery replayed).
  const names = Array.from({ length: 60 }, (_, i) => (i % 3 === 1 ? `plain${i}` : `r\xe9${i}\xff`));
  const requests = names.map((name, i) => latin1(`GET /echo/${name} HTTP/1.1\r\n${H}${i === 0 ? 'Connection: upgrade\r\nUpgrade: foo\r\n' : ''}\r\n`));
  requests.push(latin1(`GET /echo/last\xe9 HTTP/1.1\r\n${H}Connection: close\r\n\r\n`));
  const answers = await exchange(Buffer.concat(requests), requests.map(() => 'GET'));
  assert.deepEqual(answers.map((a) => echoed(a.body).environ.PATH_INFO), [...names.map((name) => `/echo/${name}`), '/echo/last\u00e9']);
});

test('a body shaped like a raw-target request is a body: never served as a request', async () => {
  const inner = latin1(`GET /hits/raw-in-body-\xfc HTTP/1.1\r\n${H}\r\n`);
  const bytes = Buffer.concat([
    latin1(`POST /echo/outer HTTP/1.1\r\n${H}Content-Length: ${inner.length}\r\n\r\n`), inner,
    latin1(`GET /hits/raw-in-body-\xfc/peek HTTP/1.1\r\n${H}Connection: close\r\n\r\n`),
  ]);
  const answers = await exchange(bytes, ['POST', 'GET']);
  assert.deepEqual(answers.map((a) => a.status), [200, 200]);
  assert.equal(echoed(answers[0]!.body).body_bytes, inner.length);
  assert.equal(answers[1]!.body.toString().trim(), '0');
});

test('a body tail never joins the request line after it (the method is the request\'s own)', async () => {
  // `UN` ends a body; `LOCK /…` is the next request: llhttp says LOCK, and so must the recovery.
  const bytes = Buffer.concat([
    latin1(`POST /echo/a HTTP/1.1\r\n${H}Content-Length: 2\r\n\r\nUN`),
    latin1(`LOCK /echo/\xfc HTTP/1.1\r\n${H}Connection: close\r\n\r\n`),
  ]);
  const answers = await exchange(bytes, ['POST', 'LOCK']);
  assert.deepEqual(answers.map((a) => a.status), [200, 200]);
  assert.equal(echoed(answers[1]!.body).environ.REQUEST_METHOD, 'LOCK');
  assert.equal(echoed(answers[1]!.body).environ.PATH_INFO, '/echo/\u00fc');
});

test('keep-alive: raw targets on one connection, request after request', async () => {
  const connection = await RawConnection.open(server.port);
  try {
    const names = ['\xe9', 'a\xfcb', 'plain', '\xff'];
    for (const [index, name] of names.entries()) {
      connection.write(latin1(`GET /echo/${name} HTTP/1.1\r\n${H}\r\n`));
      const methods = names.slice(0, index + 1).map(() => 'GET');
      const text = await connection.readUntil((received) => parseResponses(latin1(received), methods, false).responses.length === index + 1);
      const answer = parseResponses(latin1(text), methods, false).responses[index]!;
      assert.equal(answer.status, 200);
      assert.equal(echoed(answer.body).environ.PATH_INFO, `/echo/${name}`);
    }
  } finally {
    connection.socket.destroy();
  }
});

test('what stays refused gets a plain 400 (no parser code in the body) and a debug line with the reason', async () => {
  const cases = [
    // A raw byte after the version.
    latin1(`GET /echo/\xfc HTTP/1.1\xfc\r\n${H}\r\n`),
    // A control byte in the target.
    latin1(`GET /echo/\x01 HTTP/1.1\r\n${H}\r\n`),
  ];
  for (const bytes of cases) {
    const { response, closedByServer } = await rawRequest(server.port, bytes);
    assert.match(response, /^HTTP\/1\.1 400 /);
    assert.ok(closedByServer);
    assert.doesNotMatch(response, /HPE_|Parse Error|llhttp/);
    assert.match(response, /\r\n\r\nBad Request: malformed request\n$/);
  }
  await waitForLog(server, /"event":"client\.error".*"reason":"[^"]*HPE_INVALID_VERSION/);
  await waitForLog(server, /"event":"client\.error".*"reason":"[^"]*HPE_INVALID_URL/);
});

test('a request line split across reads before its raw byte: refused cleanly (400), never misread', async () => {
  const connection = await RawConnection.open(server.port);
  try {
    // Two segments (no Nagle delay): the server most often reads them apart, which is the case here.
    connection.socket.setNoDelay(true);
    await connection.send('GET /echo/sp');
    await connection.send(latin1(`lit\xfc HTTP/1.1\r\n${H}Connection: close\r\n\r\n`));
    await connection.whenClosed;
    const text = connection.text();
    assert.ok(/^HTTP\/1\.1 (?:400|200) /.test(text), text);
    if (text.startsWith('HTTP/1.1 200')) {
      // Both reads were joined on the way: then it is served right.
      assert.equal(echoed(latin1(text.split('\r\n\r\n')[1]!)).environ.PATH_INFO, '/echo/split\u00fc');
    } else {
      assert.doesNotMatch(text, /HPE_/);
    }
  } finally {
    connection.socket.destroy();
  }
});

test('TLS: HTTP/2 with a raw :path, and HTTP/1.1 on the same listener, give the same environ', async () => {
  const tls = await startServer(['--app', 'suite:app', '-f', apps, '--processes', '1', ...tlsArgs], { scheme: 'https' });
  const session = http2Connect(`https://127.0.0.1:${tls.port}`, { ca: readFileSync(certificate.cert, 'utf8'), servername: 'localhost' });
  try {
    await once(session, 'connect');
    // Node's client writes header values as latin-1: one byte per character, unescaped.
    const stream = session.request({ ':path': '/echo/\u00c3\u00bc?q=\u00fc' });
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    const [headers] = await once(stream, 'response') as [Record<string, string | number>];
    await once(stream, 'end');
    assert.equal(headers[':status'], 200);
    const { environ } = echoed(Buffer.concat(chunks));
    assert.equal(environ.PATH_INFO, '/echo/\u00c3\u00bc');
    assert.equal(environ.QUERY_STRING, 'q=\u00fc');
    assert.equal(environ.REQUEST_URI, '/echo/\u00c3\u00bc?q=\u00fc');
    // The HTTP/1.1 side of the same TLS listener (ALPN http/1.1).
    const socket = tlsConnect({ port: tls.port, host: '127.0.0.1', servername: 'localhost', ca: readFileSync(certificate.cert, 'utf8'), ALPNProtocols: ['http/1.1'] });
    await once(socket, 'secureConnect');
    socket.write(latin1(`GET /echo/\xc3\xbc?q=\xfc HTTP/1.1\r\n${H}Connection: close\r\n\r\n`));
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    await once(socket, 'close');
    const [answer] = parseResponses(Buffer.concat(received), ['GET']).responses;
    assert.equal(answer!.status, 200);
    assert.deepEqual(pick(echoed(answer!.body).environ), pick(environ));
  } finally {
    session.close();
    await tls.stop();
  }
});
