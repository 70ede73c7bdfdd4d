/**
 * HTTP/2 end to end: the real CLI with a real certificate, Node's own http2 client. The same
 * TLS port serves HTTP/1.1 clients; WSGI apps see HTTP/2 requests as HTTP/1.1 ones.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { connect as http2Connect, constants, type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { fixtures, startServer, waitForStarted, type StartedServer } from '../helpers/server.js';
import { deliberateWait, waitUntil } from '../helpers/waits.js';
import { makeCertificate } from '../helpers/tls.js';
import { Flag, frame, FrameType, RawH2, requestBlock, rstFrame, type Frame } from '../helpers/h2-frames.js';

const apps = join(fixtures, 'apps');
const certificate = makeCertificate();
const ca = readFileSync(certificate.cert, 'utf8');
const tlsArgs = ['-c', certificate.cert, '-k', certificate.key];

interface H2Answer { headers: IncomingHttpHeaders; body: Buffer }

/** A session that is connected and has the server's SETTINGS. */
async function connect(port: number): Promise<ClientHttp2Session> {
  const session = http2Connect(`https://127.0.0.1:${port}`, { ca, servername: 'localhost' });
  await Promise.all([once(session, 'connect'), once(session, 'remoteSettings')]);
  return session;
}

/** One request on `session`; `body` is written in 16 KiB pieces with no Content-Length unless given. */
function h2(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: Buffer): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    let responseHeaders: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (received) => { responseHeaders = received; });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve({ headers: responseHeaders, body: Buffer.concat(chunks) }));
    stream.on('error', reject);
    if (body !== undefined) {
      for (let offset = 0; offset < body.length; offset += 16384) stream.write(body.subarray(offset, offset + 16384));
      stream.end();
    }
  });
}

function environOf(answer: H2Answer): Record<string, string> {
  return (JSON.parse(answer.body.toString()) as { environ: Record<string, string> }).environ;
}

function negotiated(port: number, protocols: string[]): Promise<string | false> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost', ALPNProtocols: protocols }, () => {
      const protocol = socket.alpnProtocol ?? false;
      socket.end();
      resolve(protocol);
    });
    socket.on('error', reject);
  });
}

/** Sends raw bytes over TLS with ALPN http/1.1; resolves with everything received until the server closes. */
function rawHttp1OverTls(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost', ALPNProtocols: ['http/1.1'] }, () => {
      if (bytes !== '') socket.write(bytes);
    });
    let received = '';
    socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1'); });
    socket.on('close', () => resolve(received));
    socket.on('error', reject);
  });
}

function http1Get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, ca, servername: 'localhost' }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => { body += chunk.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('HTTP/2 with the fixture apps', () => {
  let server: StartedServer;
  let session: ClientHttp2Session;
  const folder = mkdtempSync(join(tmpdir(), 'w2n-h2-'));

  before(async () => {
    // -l writes httpserver.log into the -f folder; the fixture apps come from PYTHONPATH.
    server = await startServer(['--app', 'suite:app', '-f', folder, '-l', '--http2-max-streams', '7', '--max-header-size', '8k', ...tlsArgs],
      { scheme: 'https', env: { PYTHONPATH: apps } });
    session = await connect(server.port);
  });
  after(async () => {
    session.close();
    assert.equal(await server.stop(), 0);
    rmSync(folder, { recursive: true, force: true });
    // Node warns once per process when a reason phrase or a Connection header is given to HTTP/2.
    assert.doesNotMatch(server.stderr(), /Warning/);
  });

  test('ALPN negotiates h2; the start-up line says so; the server announces its limits', async () => {
    assert.equal(session.alpnProtocol, 'h2');
    assert.match(server.stdout(), /^TLS: on \(TLS 1\.2 and newer; HTTP\/2 and HTTP\/1\.1 by ALPN\)$/m);
    assert.equal(session.remoteSettings.maxConcurrentStreams, 7);
    assert.equal(session.remoteSettings.maxHeaderListSize, 8192);
    assert.equal(session.remoteSettings.enablePush, false);
  });

  test('the environ: SERVER_PROTOCOL HTTP/2.0, no pseudo-headers, :authority as HTTP_HOST, cookies joined with "; "', async () => {
    const answer = await h2(session, {
      ':method': 'GET', ':path': '/echo/a%20b?x=1', ':authority': `example.test:${server.port}`,
      cookie: ['a=1', 'b=2'], 'x-custom': 'kept',
    });
    assert.equal(answer.headers[':status'], 200);
    const env = environOf(answer);
    assert.equal(env.SERVER_PROTOCOL, 'HTTP/2.0');
    assert.equal(env.REQUEST_METHOD, 'GET');
    assert.equal(env.PATH_INFO, '/echo/a b');
    assert.equal(env.QUERY_STRING, 'x=1');
    assert.equal(env.HTTP_HOST, `example.test:${server.port}`);
    assert.equal(env.HTTP_COOKIE, 'a=1; b=2');
    assert.equal(env.HTTP_X_CUSTOM, 'kept');
    assert.equal(env['wsgi.url_scheme'], 'https');
    assert.equal(env.HTTPS, 'on');
    assert.equal(env.SERVER_PORT, String(server.port));
    assert.deepEqual(Object.keys(env).filter((key) => key.includes(':')), [], 'no pseudo-header became a variable');
  });

  test('a host header wins over :authority', async () => {
    const env = environOf(await h2(session, { ':path': '/echo', ':authority': 'authority.test', host: 'host.test' }));
    assert.equal(env.HTTP_HOST, 'host.test');
  });

  test('request bodies reach the app, with and without Content-Length', async () => {
    const body = Buffer.alloc(300_000, 'abcdefgh');
    const sha256 = createHash('sha256').update(body).digest('hex');
    for (const headers of [{}, { 'content-length': String(body.length) }]) {
      const answer = await h2(session, { ':method': 'POST', ':path': '/upload', ...headers }, body);
      assert.equal(answer.headers[':status'], 200);
      assert.deepEqual(JSON.parse(answer.body.toString()), { bytes: body.length, sha256 });
    }
    const empty = await h2(session, { ':method': 'POST', ':path': '/upload' }, Buffer.alloc(0));
    assert.deepEqual(JSON.parse(empty.body.toString()), { bytes: 0, sha256: createHash('sha256').digest('hex') });
  });

  test('a body without Content-Length is spooled and handed over with CONTENT_LENGTH, as web2py needs', async () => {
    const env = environOf(await h2(session, { ':method': 'POST', ':path': '/echo' }, Buffer.alloc(70_000, 'x')));
    assert.equal(env.CONTENT_LENGTH, '70000');
    assert.equal(env.HTTP_TRANSFER_ENCODING, undefined);
  });

  test('Expect: 100-continue gets its 100 before the body is sent', async () => {
    const body = Buffer.from('continued');
    const answer = await new Promise<H2Answer>((resolve, reject) => {
      const stream = session.request({ ':method': 'POST', ':path': '/upload', expect: '100-continue', 'content-length': String(body.length) }, { endStream: false });
      let headers: IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      stream.on('continue', () => stream.end(body)); // nothing is sent before the 100
      stream.on('response', (h) => { headers = h; });
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => resolve({ headers, body: Buffer.concat(chunks) }));
      stream.on('error', reject);
    });
    assert.equal(answer.headers[':status'], 200);
    assert.equal(JSON.parse(answer.body.toString()).bytes, body.length);
  });

  test('a streamed response without Content-Length arrives whole, without connection headers', async () => {
    const size = 3 * 65536 + 100;
    const answer = await h2(session, { ':path': `/stream?n=${size}` });
    assert.equal(answer.headers[':status'], 200);
    assert.equal(answer.body.length, size);
    assert.equal(answer.body[65536 + 1], 1);
    for (const name of ['connection', 'keep-alive', 'transfer-encoding']) assert.equal(answer.headers[name], undefined, name);
  });

  test('wsgi.file_wrapper: the front streams the file over HTTP/2', async () => {
    const file = join(folder, 'blob.bin');
    const blob = Buffer.alloc(700_000);
    for (let i = 0; i < blob.length; i += 1) blob[i] = (i * 7) & 0xff;
    writeFileSync(file, blob);
    const answer = await h2(session, { ':path': `/filewrap?path=${encodeURIComponent(file)}&offset=5` });
    assert.equal(answer.headers[':status'], 200);
    assert.equal(answer.headers['content-length'], String(blob.length - 5));
    assert.ok(answer.body.equals(blob.subarray(5)));
  });

  test('streams run concurrently on one connection', async () => {
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => h2(session, { ':path': `/echo/${i}` })));
    assert.deepEqual(answers.map((answer) => environOf(answer).PATH_INFO), Array.from({ length: 20 }, (_, i) => `/echo/${i}`));
  });

  test('an app error is a 500 stream; the connection carries on', async () => {
    const failed = await h2(session, { ':path': '/boom' });
    assert.equal(failed.headers[':status'], 500);
    assert.equal((await h2(session, { ':path': '/hello' })).body.toString(), 'Hello, World!');
  });

  test('headers beyond --max-header-size: the stream is refused, the connection carries on', async () => {
    await assert.rejects(h2(session, { ':path': '/echo', 'x-big': 'x'.repeat(9000) }), /ENHANCE_YOUR_CALM|STREAM/);
    assert.equal((await h2(session, { ':path': '/hello' })).headers[':status'], 200);
  });

  test('built-ins: /health and /metrics (loopback) answer over HTTP/2', async () => {
    const health = await h2(session, { ':path': '/health' });
    assert.equal(health.headers[':status'], 200);
    assert.equal(health.body.toString(), 'OK\n');
    const metrics = await h2(session, { ':path': '/metrics' });
    assert.equal(metrics.headers[':status'], 200);
    assert.match(metrics.body.toString(), /^# HELP /m);
  });

  test('an HTTP/1.1 client on the same TLS port is served as before', async () => {
    assert.equal(await negotiated(server.port, ['http/1.1']), 'http/1.1');
    const answer = await http1Get(server.port, '/echo');
    assert.equal(answer.status, 200);
    assert.equal((JSON.parse(answer.body) as { environ: Record<string, string> }).environ.SERVER_PROTOCOL, 'HTTP/1.1');
    assert.equal((await http1Get(server.port, '/hello')).body, 'Hello, World!');
  });

  test('HTTP/1.1 on the HTTP/2 port keeps the front\'s limits: 400 for bad HTTP, 431 for a large head', async () => {
    assert.match(await rawHttp1OverTls(server.port, 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n'), /^HTTP\/1\.1 400 /);
    assert.match(await rawHttp1OverTls(server.port, 'GET / HTTP/1.1\r\n\r\n'), /^HTTP\/1\.1 400 /, 'Host is required');
    assert.match(await rawHttp1OverTls(server.port, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'x'.repeat(9000)}\r\n\r\n`), /^HTTP\/1\.1 431 /);
  });

  test('an application request without a body is answered on the stream itself, with the head the compatibility layer gives', async () => {
    const connection = await RawH2.open(server.port, ca);
    try {
      // GET: HEADERS then the body, END_STREAM on its last DATA (no empty closing frame); HEAD: the HEADERS alone.
      assert.ok(isAnsweredOnStream(await framesOf(connection, 'GET', '/hello/raw')));
      const head = await framesOf(connection, 'HEAD', '/hello/raw');
      assert.deepEqual(head.map((f) => [f.type, f.flags & Flag.END_STREAM]), [[FrameType.HEADERS, Flag.END_STREAM]]);
      // A request with a body still goes through the compatibility layer (its empty closing DATA frame).
      const id = connection.nextStreamId;
      connection.nextStreamId += 2;
      connection.write(frame(FrameType.HEADERS, Flag.END_HEADERS, id, requestBlock('POST', '/hello/raw', 'localhost', [['content-length', '1']])));
      connection.write(frame(FrameType.DATA, Flag.END_STREAM, id, Buffer.from('x')));
      await connection.waitFor((f) => f.streamId === id && (f.flags & Flag.END_STREAM) !== 0);
      assert.ok(!isAnsweredOnStream(connection.frames.filter((f) => f.streamId === id)));
    } finally {
      connection.close();
    }
    const raw = await h2(session, { ':path': '/hello/raw' });
    const head = await h2(session, { ':method': 'HEAD', ':path': '/hello/raw' });
    const compatibility = await h2(session, { ':method': 'POST', ':path': '/hello/raw' }, Buffer.from('x'));
    assert.equal(raw.body.toString(), 'Hello, World!');
    assert.deepEqual(sameFields(raw.headers), sameFields(compatibility.headers));
    assert.deepEqual(sameFields(head.headers), sameFields(raw.headers));
    assert.equal(head.body.length, 0);
    assert.match(String(raw.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    assert.notEqual(raw.headers['x-request-id'], head.headers['x-request-id']);
  });

  test('on the stream itself: a bad application head is a 500, the application\'s own Server header is kept', async () => {
    // A 1xx status as the final answer: the front answers 500 in the application's place.
    const info = await h2(session, { ':path': '/badheaders?kind=info' });
    assert.equal(info.headers[':status'], 500);
    assert.match(String(info.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    const own = await h2(session, { ':path': '/badheaders?kind=server' });
    assert.equal(own.headers.server, 'my-app/1.0');
    assert.equal((await h2(session, { ':path': '/hello' })).body.toString(), 'Hello, World!');
  });

  test('on the stream itself: a slow reader gets a big answer whole; a reset mid-answer cancels the request and writes its line', async () => {
    // Node's client opens its window as it reads: 1,000 bytes a stream at first, the answer waits for each update.
    const slow = http2Connect(`https://127.0.0.1:${server.port}`, { ca, servername: 'localhost', settings: { initialWindowSize: 1000 } });
    try {
      await Promise.all([once(slow, 'connect'), once(slow, 'remoteSettings')]);
      const size = 3 * 65536 + 100;
      const answer = await h2(slow, { ':path': `/stream?n=${size}&cl=1` });
      assert.equal(answer.body.length, size);
      assert.equal(answer.body[65536 + 1], 1);
    } finally {
      slow.close();
    }
    const path = '/stream';
    const connection = await RawH2.open(server.port, ca, { [SETTINGS_INITIAL_WINDOW_SIZE]: 1000 });
    try {
      const id = connection.nextStreamId;
      connection.nextStreamId += 2;
      connection.write(connection.headers(id, 'GET', `${path}?n=100000000`));
      const data = await connection.waitFor((f) => f.streamId === id && f.type === FrameType.DATA);
      assert.equal(data?.payload.length, 1000);
      connection.write(rstFrame(id));
      await waitUntil('the reset stream\'s access line', () => readFileSync(join(folder, 'httpserver.log'), 'utf8').includes(', GET, /stream, HTTP/2.0, 200, '));
      // The request was cancelled: its worker is free again (it would wait for the client's window for ever).
      await waitUntil('no request in flight', async () => {
        const status = JSON.parse((await h2(session, { ':path': '/status.json' })).body.toString()) as { workers: { inFlight: number }[] };
        return status.workers.every((worker) => worker.inFlight === 0);
      });
      // The connection carries on.
      assert.ok(isAnsweredOnStream(await framesOf(connection, 'HEAD', '/hello')));
    } finally {
      connection.close();
    }
  });

  test('the access log says HTTP/2.0', async () => {
    await h2(session, { ':path': '/hello/logged' });
    const logFile = join(folder, 'httpserver.log');
    let lines: string[] = [];
    await waitUntil('the access log line', () => {
      lines = readFileSync(logFile, 'utf8').split('\n').filter((line) => line.includes('/hello/logged'));
      return lines.length > 0;
    });
    assert.match(lines[0] ?? '', /^127\.0\.0\.1, \d{4}-\d\d-\d\d \d\d:\d\d:\d\d, GET, \/hello\/logged, HTTP\/2\.0, 200, \d+\.\d{6}$/);
  });
});

/** The frames of one request written by hand (RawH2), in the order received, up to its END_STREAM or RST_STREAM. */
async function framesOf(connection: RawH2, method: string, path: string, extra: [string, string][] = []): Promise<Frame[]> {
  const id = connection.nextStreamId;
  connection.nextStreamId += 2;
  connection.write(connection.headers(id, method, path, extra));
  await connection.waitFor((f) => f.streamId === id && ((f.flags & Flag.END_STREAM) !== 0 || f.type === FrameType.RST_STREAM));
  const frames = connection.frames.filter((f) => f.streamId === id);
  // The connection's flow-control window back (RawH2 gives none): the next answers are not held up.
  const received = frames.reduce((sum, f) => sum + (f.type === FrameType.DATA ? f.payload.length : 0), 0);
  if (received > 0) connection.write(windowUpdate(received));
  return frames;
}

const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;

function windowUpdate(increment: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(increment);
  return frame(FrameType.WINDOW_UPDATE, 0, 0, payload);
}

/**
 * Node's compatibility layer ends every answer with an empty DATA frame (END_STREAM once its
 * `waitForTrailers` found no trailers); an answer made on the stream itself (front/http2-static.ts)
 * ends with its HEADERS or its last DATA.
 */
function isAnsweredOnStream(frames: Frame[]): boolean {
  const last = frames.at(-1);
  return last !== undefined && (last.flags & Flag.END_STREAM) !== 0 && (last.type === FrameType.HEADERS || last.payload.length > 0);
}

/** A head to compare: without the date and the request id (each answer has its own). */
function sameFields(headers: IncomingHttpHeaders): Record<string, unknown> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => name !== 'date' && name !== 'x-request-id'));
}

describe('HTTP/2 static files of a web2py app', () => {
  let server: StartedServer;
  /** The same tree with --static-cache-size 0: every answer from disk, through the compatibility layer. */
  let diskServer: StartedServer;
  let session: ClientHttp2Session;
  let diskSession: ClientHttp2Session;
  const scratch = mkdtempSync(join(tmpdir(), 'w2n-h2-web2py-'));
  const folder = join(scratch, 'web2py');
  cpSync(join(fixtures, 'web2py'), folder, { recursive: true });
  const css = readFileSync(join(folder, 'applications', 'welcome', 'static', 'css', 'web2py.css'));
  const big = Buffer.alloc(32 * 1024, 0x62);
  writeFileSync(join(folder, 'applications', 'welcome', 'static', 'big.bin'), big);
  const accessLines = (path: string): string[] => readFileSync(join(folder, 'httpserver.log'), 'utf8').split('\n').filter((line) => line.includes(`, ${path}, `));

  before(async () => {
    [server, diskServer] = await Promise.all([
      startServer(['-f', folder, '-l', ...tlsArgs], { scheme: 'https' }),
      startServer(['-f', folder, '--static-cache-size', '0', ...tlsArgs], { scheme: 'https' }),
    ]);
    [session, diskSession] = await Promise.all([connect(server.port), connect(diskServer.port)]);
  });
  after(async () => {
    session.close();
    diskSession.close();
    assert.equal(await server.stop(), 0);
    assert.equal(await diskServer.stop(), 0);
    rmSync(scratch, { recursive: true, force: true });
    assert.doesNotMatch(server.stderr(), /Warning/);
  });

  test('a cached file is answered on the stream itself, with the head and body the compatibility layer gives from disk', async () => {
    const connection = await RawH2.open(server.port, ca);
    try {
      const path = '/welcome/static/js/app.js';
      const first = await framesOf(connection, 'GET', path);
      assert.equal(isAnsweredOnStream(first), false, 'the first answer comes from disk, through the compatibility layer');
      await waitUntil('the file cached', async () => isAnsweredOnStream(await framesOf(connection, 'GET', path)));
      const lastModified = String((await h2(diskSession, { ':path': path })).headers['last-modified']);
      const etag = String((await h2(diskSession, { ':path': path })).headers.etag);
      const cases: { name: string; path: string; method?: string; extra?: [string, string][]; status: number }[] = [
        { name: 'GET', path, status: 200 },
        { name: 'HEAD', path, method: 'HEAD', status: 200 },
        { name: '304 by ETag', path, extra: [['if-none-match', etag]], status: 304 },
        { name: '304 by Last-Modified', path, extra: [['if-modified-since', lastModified]], status: 304 },
        { name: 'versioned', path: '/welcome/static/_2.1.1/js/app.js', status: 200 },
        { name: 'attachment', path: `${path}?attachment`, status: 200 },
      ];
      for (const { name, path: casePath, method = 'GET', extra = [], status } of cases) {
        const request = { ':method': method, ':path': casePath, ...Object.fromEntries(extra) };
        await waitUntil(`${name}: cached`, async () => isAnsweredOnStream(await framesOf(connection, method, casePath, extra)));
        const fromMemory = await h2(session, request);
        const fromDisk = await h2(diskSession, request);
        assert.equal(fromMemory.headers[':status'], status, name);
        assert.deepEqual(sameFields(fromMemory.headers), sameFields(fromDisk.headers), name);
        assert.deepEqual(fromMemory.body, fromDisk.body, name);
        assert.match(String(fromMemory.headers['x-request-id']), /^[0-9a-f-]{36}$/, name);
      }
      // A range and a precondition are served from disk, through the compatibility layer, and right.
      const range = await framesOf(connection, 'GET', path, [['range', 'bytes=0-4']]);
      assert.equal(isAnsweredOnStream(range), false);
      const ranged = await h2(session, { ':path': path, range: 'bytes=0-4' });
      assert.equal(ranged.headers[':status'], 206);
      assert.equal(ranged.body.length, 5);
      assert.equal((await h2(session, { ':path': path, 'if-match': '"nope"' })).headers[':status'], 412);
    } finally {
      connection.close();
    }
  });

  test('an answer from memory has its access line: HTTP/2.0, the status, the client', async () => {
    const path = '/welcome/static/css/web2py.css';
    const connection = await RawH2.open(server.port, ca);
    try {
      await waitUntil('the file cached', async () => isAnsweredOnStream(await framesOf(connection, 'GET', path)));
    } finally {
      connection.close();
    }
    // The GETs above may still be in the log's buffer: the HEAD line, written after them, says all are out.
    await h2(session, { ':method': 'HEAD', ':path': path });
    let lines: string[] = [];
    await waitUntil('the access lines', () => {
      lines = accessLines(path);
      return lines.some((line) => line.includes(', HEAD, '));
    });
    const line = /^127\.0\.0\.1, \d{4}-\d\d-\d\d \d\d:\d\d:\d\d, (GET|HEAD), \/welcome\/static\/css\/web2py\.css, HTTP\/2\.0, 200, \d+\.\d{6}$/;
    for (const each of lines) assert.match(each, line);
  });

  test('a client that resets a stream mid-answer: the stream closes, its line is written, the connection carries on', async () => {
    const path = '/welcome/static/big.bin';
    const connection = await RawH2.open(server.port, ca);
    try {
      await waitUntil('the file cached', async () => isAnsweredOnStream(await framesOf(connection, 'GET', path)));
    } finally {
      connection.close();
    }
    // A client window of 1,000 bytes per stream: the answer stops after its first DATA until the client reads.
    const slow = await RawH2.open(server.port, ca, { [SETTINGS_INITIAL_WINDOW_SIZE]: 1000 });
    try {
      const before = accessLines(path).length;
      const id = slow.nextStreamId;
      slow.nextStreamId += 2;
      slow.write(slow.headers(id, 'GET', path));
      const data = await slow.waitFor((f) => f.streamId === id && f.type === FrameType.DATA);
      assert.equal(data?.payload.length, 1000);
      assert.equal((data.flags & Flag.END_STREAM), 0, 'the answer is not over');
      slow.write(rstFrame(id));
      let lines: string[] = [];
      await waitUntil('the reset stream\'s access line', () => {
        lines = accessLines(path).slice(before);
        return lines.length > 0;
      });
      assert.match(lines[0]!, /, GET, \/welcome\/static\/big\.bin, HTTP\/2\.0, 200, /);
      // The connection carries on: a HEAD on a new stream is answered.
      const head = await framesOf(slow, 'HEAD', path);
      assert.equal(head.length, 1);
      assert.equal(head[0]!.type, FrameType.HEADERS);
      assert.ok(isAnsweredOnStream(head));
    } finally {
      slow.close();
    }
  });

  test('200 with validators, 304, a range and several ranges', async () => {
    const path = '/welcome/static/css/web2py.css';
    const whole = await h2(session, { ':path': path });
    assert.equal(whole.headers[':status'], 200);
    assert.deepEqual(whole.body, css);
    assert.equal(whole.headers['content-type'], 'text/css; charset=utf-8');
    assert.equal(whole.headers['x-powered-by'], 'web2py');
    const etag = whole.headers.etag as string;
    assert.ok(etag);

    const notModified = await h2(session, { ':path': path, 'if-none-match': etag });
    assert.equal(notModified.headers[':status'], 304);
    assert.equal(notModified.body.length, 0);

    const range = await h2(session, { ':path': path, range: 'bytes=10-19' });
    assert.equal(range.headers[':status'], 206);
    assert.equal(range.headers['content-range'], `bytes 10-19/${css.length}`);
    assert.deepEqual(range.body, css.subarray(10, 20));

    const ranges = await h2(session, { ':path': path, range: 'bytes=0-4,100-104' });
    assert.equal(ranges.headers[':status'], 206);
    assert.match(String(ranges.headers['content-type']), /^multipart\/byteranges; boundary=/);
    assert.ok(ranges.body.includes(css.subarray(100, 105)));

    const head = await h2(session, { ':method': 'HEAD', ':path': path });
    assert.equal(head.headers[':status'], 200);
    assert.equal(head.headers['content-length'], String(css.length));
    assert.equal(head.body.length, 0);
  });

  test('a missing file is web2py\'s 404, and a page comes from the app', async () => {
    const missing = await h2(session, { ':path': '/welcome/static/nope.css' });
    assert.equal(missing.headers[':status'], 404);
    assert.equal(missing.body.toString(), '404 NOT FOUND');
    const page = await h2(session, { ':path': '/welcome/default/index' });
    assert.equal(page.headers[':status'], 200);
    assert.match(page.body.toString(), /Hello from welcome/);
  });
});

test('--http2 off: ALPN offers only HTTP/1.1, and HTTPS still works', async () => {
  const server = await startServer(['--app', 'suite:app', '-f', apps, '--http2', 'off', ...tlsArgs], { scheme: 'https' });
  try {
    assert.notEqual(await negotiated(server.port, ['h2', 'http/1.1']), 'h2');
    assert.match(server.stdout(), /^TLS: on \(TLS 1\.2 and newer; HTTP\/1\.1 only, --http2 off\)$/m);
    assert.equal((await http1Get(server.port, '/hello')).body, 'Hello, World!');
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

test('plain HTTP listeners do not speak HTTP/2 (no h2c): a prior-knowledge preface gets 400', async () => {
  const server = await startServer(['--app', 'suite:app', '-f', apps]);
  try {
    const { createConnection } = await import('node:net');
    const socket = createConnection({ host: '127.0.0.1', port: server.port });
    socket.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
    let received = '';
    socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1'); });
    await once(socket, 'close');
    assert.match(received, /^HTTP\/1\.1 400 /);
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

test('graceful stop with an open HTTP/2 session: GOAWAY, the request in flight finishes, exit 0', async () => {
  const server = await startServer(['--app', 'suite:app', '-f', apps, ...tlsArgs], { scheme: 'https' });
  const session = await connect(server.port);
  const goaway = once(session, 'goaway');
  const closed = once(session, 'close');
  try {
    assert.equal((await h2(session, { ':path': '/hello' })).headers[':status'], 200);
    const slow = h2(session, { ':path': '/slow?s=1.5&signal=slow' });
    await waitForStarted(server, 'slow'); // in the application before the stop
    server.process.kill('SIGTERM');
    const [code] = await goaway as [number];
    assert.equal(code, constants.NGHTTP2_NO_ERROR);
    const answer = await slow;
    assert.equal(answer.headers[':status'], 200);
    assert.equal(answer.body.toString(), 'slept 1.5');
    await closed;
    assert.equal((await server.exited).code, 0);
  } finally {
    session.destroy();
    await server.stop();
  }
});

test('an HTTP/2 session is closed when idle for --keep-alive-timeout, or silent for --headers-timeout', async () => {
  const server = await startServer(['--app', 'suite:app', '-f', apps, '--keep-alive-timeout', '1', '--headers-timeout', '1', ...tlsArgs], { scheme: 'https' });
  try {
    const session = await connect(server.port);
    assert.equal((await h2(session, { ':path': '/hello' })).headers[':status'], 200);
    const started = Date.now();
    await once(session, 'close');
    assert.ok(Date.now() - started < 8_000, 'closed by the idle timeout, not by the test');

    const silent = tlsConnect({ host: '127.0.0.1', port: server.port, ca, servername: 'localhost', ALPNProtocols: ['h2'] });
    silent.on('data', () => undefined);
    await once(silent, 'secureConnect');
    assert.equal(silent.alpnProtocol, 'h2');
    await once(silent, 'close');
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

test('an HTTP/2 connection whose requests are all answered from memory meets its head deadline: it is not cut after --headers-timeout', async () => {
  const scratch = mkdtempSync(join(tmpdir(), 'w2n-h2-deadline-'));
  const folder = join(scratch, 'web2py');
  cpSync(join(fixtures, 'web2py'), folder, { recursive: true });
  const server = await startServer(['-f', folder, '--headers-timeout', '0.5', ...tlsArgs], { scheme: 'https' });
  const path = '/welcome/static/css/web2py.css';
  try {
    const probe = await RawH2.open(server.port, ca);
    try {
      await waitUntil('the file cached', async () => isAnsweredOnStream(await framesOf(probe, 'GET', path)));
    } finally {
      probe.close();
    }
    const session = await connect(server.port);
    try {
      assert.equal((await h2(session, { ':path': path })).headers[':status'], 200);
      await deliberateWait(1_200, 'past --headers-timeout from the accept: a connection still unproven would be cut now');
      assert.equal(session.closed || session.destroyed, false);
      assert.equal((await h2(session, { ':path': path })).headers[':status'], 200);
    } finally {
      session.close();
    }
  } finally {
    assert.equal(await server.stop(), 0);
    rmSync(scratch, { recursive: true, force: true });
  }
});

test('HTTP/1.1 on the HTTP/2 port keeps the head deadline: a slow head gets 408 and is closed (no slowloris)', async () => {
  const server = await startServer(['--app', 'suite:app', '-f', apps, '--headers-timeout', '1', ...tlsArgs], { scheme: 'https' });
  try {
    const slow = tlsConnect({ host: '127.0.0.1', port: server.port, ca, servername: 'localhost', ALPNProtocols: ['http/1.1'] });
    let received = '';
    slow.on('data', (chunk: Buffer) => { received += chunk.toString('latin1'); });
    await once(slow, 'secureConnect');
    assert.equal(slow.alpnProtocol, 'http/1.1');
    slow.write('GET /hello HTTP/1.1\r\nHost: localhost\r\n'); // and never the blank line
    const closed = once(slow, 'close');
    const timer = setTimeout(() => slow.destroy(), 8_000);
    await closed;
    clearTimeout(timer);
    assert.match(received, /^HTTP\/1\.1 408 /, 'answered 408 by the server, not cut by the test');
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

test('an HTTP/2 request body not received within --request-timeout gets 408', async () => {
  const server = await startServer(['--app', 'suite:app', '-f', apps, '--request-timeout', '1', '--headers-timeout', '1', ...tlsArgs], { scheme: 'https' });
  const session = await connect(server.port);
  try {
    const stream = session.request({ ':method': 'POST', ':path': '/upload' }, { endStream: false });
    stream.write('partial body, never ended');
    const [headers] = await once(stream, 'response') as [IncomingHttpHeaders];
    assert.equal(headers[':status'], 408);
  } finally {
    session.destroy();
    assert.equal(await server.stop(), 0);
  }
});
