/**
 * Outages one client can cause on its own (issue 11): HTTP/2 streams reset before or just after
 * their HEADERS (descriptors and queue places that must come back), a rapid-reset burst
 * (CVE-2023-44487), answers nobody reads (memory), bodies that never end, and the HTTP/2 preface
 * sent to a plain HTTP/1 port. Each is measured from outside: the front's descriptors and RSS
 * from /proc, and what the fixture apps saw; no test waits a fixed time.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { connect as http2Connect, type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { fixtures, startServer, waitForStarted, type StartedServer } from '../helpers/server.js';
import { makeCertificate } from '../helpers/tls.js';
import { Flag, frame, FrameType, PREFACE, RawH2, requestBlock, rstFrame, settingsFrame } from '../helpers/h2-frames.js';
import { pollPause } from '../helpers/waits.js';
import { connect as netConnect, type Socket } from 'node:net';
import { get as httpGet } from 'node:http';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

const apps = join(fixtures, 'apps');
const certificate = makeCertificate();
const ca = readFileSync(certificate.cert, 'utf8');
const tlsArgs = ['-c', certificate.cert, '-k', certificate.key];
const scratch = mkdtempSync(join(tmpdir(), 'w2n-h2-outages-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** A file big enough never to be answered from memory, and to be streamed in several reads. */
const bigFile = join(scratch, 'big.bin');
writeFileSync(bigFile, Buffer.alloc(4 * 1024 * 1024, 'x'));

async function connect(port: number, settings: { initialWindowSize?: number } = {}): Promise<ClientHttp2Session> {
  const session = http2Connect(`https://127.0.0.1:${port}`, { ca, servername: 'localhost', settings });
  session.on('error', () => undefined);
  await Promise.all([once(session, 'connect'), once(session, 'remoteSettings')]);
  return session;
}

/** Resident memory of process `pid`, from /proc (bytes). */
function rssBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match![1]) * 1024;
}

/** Descriptors the process holds now. */
function descriptorCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Polls `read` until `done(value)` (or the deadline): a count settling, not a timed wait. */
async function until<T>(read: () => T, done: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = read();
  while (!done(value) && Date.now() < deadline) {
    await new Promise((resolve) => setImmediate(resolve));
    await pollPause();
    value = read();
  }
  return value;
}

/** As `until`, for a value read asynchronously. */
async function poll<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!done(value) && Date.now() < deadline) {
    await pollPause();
    value = await read();
  }
  return value;
}

/**
 * `count` requests on one raw connection, each reset by the client: half in the same write as
 * their HEADERS (the server reads both at once), half as soon as the answer's HEADERS arrive.
 * Resolves when every reset was sent; the connection is left open (its streams, not the whole
 * connection, must give their descriptors back).
 */
async function resetStreams(connection: RawH2, method: string, path: string, count: number, batch = 50): Promise<void> {
  let streamId = connection.nextStreamId;
  for (let done = 0; done < count; done += batch) {
    const answered: Promise<unknown>[] = [];
    for (let i = 0; i < Math.min(batch, count - done); i += 1) {
      const id = streamId;
      streamId += 2;
      if (i % 2 === 0) {
        connection.write(Buffer.concat([connection.headers(id, method, path), rstFrame(id)]));
        continue;
      }
      connection.write(connection.headers(id, method, path));
      answered.push(connection.waitFor((f) => f.streamId === id && (f.type === FrameType.HEADERS || f.type === FrameType.RST_STREAM))
        .then(() => connection.write(rstFrame(id))));
    }
    await Promise.all(answered);
  }
  connection.nextStreamId = streamId;
}

/** One whole request on `session`: status and body. */
function h2(session: ClientHttp2Session, headers: OutgoingHttpHeaders): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers);
    let status = 0;
    const chunks: Buffer[] = [];
    stream.on('response', (received) => { status = Number(received[':status']); });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve({ status, body: Buffer.concat(chunks) }));
    stream.on('error', reject);
  });
}

describe('HTTP/2 streams reset by the client give back their file descriptors', () => {
  let web2py: StartedServer;
  let app: StartedServer;
  const folder = join(scratch, 'web2py');

  before(async () => {
    cpSync(join(fixtures, 'web2py'), folder, { recursive: true });
    cpSync(bigFile, join(folder, 'applications', 'welcome', 'static', 'big.bin'));
    [web2py, app] = await Promise.all([
      startServer(['-f', folder, '--static-offload', 'on', ...tlsArgs], { scheme: 'https' }),
      startServer(['--app', 'suite:app', '-f', apps, '--threads', '8', ...tlsArgs], { scheme: 'https' }),
    ]);
  });
  after(async () => {
    await Promise.all([web2py?.stop(), app?.stop()]);
  });

  const cases: { name: string; server: () => StartedServer; method: string; path: string }[] = [
    { name: 'a static file (--static-offload on)', server: () => web2py, method: 'GET', path: '/welcome/static/big.bin' },
    { name: 'HEAD of a static file', server: () => web2py, method: 'HEAD', path: '/welcome/static/big.bin' },
    { name: 'a wsgi.file_wrapper answer (sent from the file by the front)', server: () => app, method: 'GET', path: `/filewrap?path=${encodeURIComponent(bigFile)}` },
    { name: 'HEAD of a wsgi.file_wrapper answer', server: () => app, method: 'HEAD', path: `/filewrap?path=${encodeURIComponent(bigFile)}` },
  ];
  for (const { name, server, method, path } of cases) {
    test(`500 reset streams of ${name}: the front's descriptors return to their baseline`, async (t) => {
      const pid = server().process.pid!;
      const session = await connect(server().port);
      // Five connections of 100 resets each (one would reach the rapid-reset limit); all stay open.
      const connections = await Promise.all(Array.from({ length: 5 }, () => RawH2.open(server().port, ca)));
      // Warm-up: one whole answer (lazy descriptors are made), then the baseline with every connection open.
      assert.equal((await h2(session, { ':method': method, ':path': path })).status, 200);
      const baseline = descriptorCount(pid);
      for (const connection of connections) await resetStreams(connection, method, path, 100);
      // The server still answers, and every file the resets opened is closed again.
      assert.equal((await h2(session, { ':method': method, ':path': path })).status, 200);
      const settled = await until(() => descriptorCount(pid), (count) => count <= baseline + 2);
      assert.ok(connections.every((connection) => !connection.closed), 'no connection was closed');
      for (const connection of connections) connection.close();
      session.close();
      t.diagnostic(`descriptors: ${baseline} before, ${settled} after`);
      assert.ok(settled <= baseline + 2, `descriptors: ${baseline} before, ${settled} after 500 reset streams`);
    });
  }
});

/** A gauge or counter of the front's /metrics (loopback), summed over its label sets. */
async function metric(session: ClientHttp2Session, name: string): Promise<number> {
  const answer = await h2(session, { ':path': '/metrics' });
  let total = 0;
  for (const line of answer.body.toString().split('\n')) {
    const match = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`).exec(line);
    if (match !== null) total += Number(match[1]);
  }
  return total;
}

describe('HTTP/2 streams reset by the client leave the queue', () => {
  let server: StartedServer;

  before(async () => {
    // One request at a time, and a queue that would hold the reset ones for two minutes.
    server = await startServer(['--app', 'suite:app', '-f', apps, '--processes', '1', '--worker-class', 'thread', '--threads', '1',
      '--queue-timeout', '120', ...tlsArgs], { scheme: 'https' });
  });
  after(async () => {
    await server?.stop();
  });

  test('40 queued requests reset by their client never reach Python; the next request runs at once', async () => {
    const session = await connect(server.port);
    // Four connections of 10 (one session has at most 16 requests in the pool: answer-gate.ts).
    const connections = await Promise.all(Array.from({ length: 4 }, () => RawH2.open(server.port, ca)));
    await h2(session, { ':path': '/inflight/reset' });
    // The one request the worker runs, then 40 behind it that the client resets once queued.
    const running = h2(session, { ':path': '/inflight?s=1&tag=running' });
    await waitForStarted(server, 'running'); // it holds the worker: the 40 queue behind it
    for (let i = 0; i < 40; i += 1) connections[i % 4]!.write(connections[i % 4]!.headers(1 + 2 * Math.floor(i / 4), 'GET', `/inflight?s=1&tag=reset-${i}`));
    assert.equal(await poll(() => metric(session, 'w2n_queue_length'), (queued) => queued >= 40), 40);
    for (let i = 0; i < 40; i += 1) connections[i % 4]!.write(rstFrame(1 + 2 * Math.floor(i / 4)));
    // Without the cancel they would stay queued, then each run for a second.
    assert.equal(await poll(() => metric(session, 'w2n_queue_length'), (queued) => queued === 0, 5_000), 0, 'the reset requests left the queue');
    const normal = await h2(session, { ':path': '/inflight?s=0&tag=normal' });
    assert.equal(normal.status, 200);
    assert.equal((await running).status, 200);
    const report = JSON.parse((await h2(session, { ':path': '/inflight/report' })).body.toString()) as { ran: string[] };
    for (const connection of connections) connection.close();
    session.close();
    assert.deepEqual(report.ran, ['running', 'normal']);
  });

  test('40 queued requests whose connections close (no RST_STREAM) never reach Python', async () => {
    // Found by hand: a session's first stream, closed with its session while queued, reads as
    // finished (writableFinished, rstCode 0) in Node's compatibility API: it was kept, then ran
    // with no client to answer, holding a worker until --timeout.
    const session = await connect(server.port);
    await h2(session, { ':path': '/inflight/reset' });
    const running = h2(session, { ':path': '/inflight?s=1&tag=running' });
    await waitForStarted(server, 'running');
    const closing = await Promise.all(Array.from({ length: 8 }, () => connect(server.port)));
    for (let i = 0; i < 40; i += 1) {
      const stream = closing[i % 8]!.request({ ':path': `/inflight?s=1&tag=closed-${i}` });
      stream.on('error', () => undefined);
    }
    assert.equal(await poll(() => metric(session, 'w2n_queue_length'), (queued) => queued >= 40), 40);
    for (const client of closing) client.destroy();
    assert.equal(await poll(() => metric(session, 'w2n_queue_length'), (queued) => queued === 0, 5_000), 0, 'the requests left the queue');
    assert.equal((await h2(session, { ':path': '/inflight?s=0&tag=normal' })).status, 200);
    assert.equal((await running).status, 200);
    const report = JSON.parse((await h2(session, { ':path': '/inflight/report' })).body.toString()) as { ran: string[] };
    session.close();
    assert.deepEqual(report.ran, ['running', 'normal']);
  });
});

describe('rapid reset (CVE-2023-44487): HEADERS then RST_STREAM, over and over', () => {
  let server: StartedServer;

  before(async () => {
    server = await startServer(['--app', 'suite:app', '-f', apps, '--processes', '1', '--threads', '4', ...tlsArgs], { scheme: 'https' });
  });
  after(async () => {
    await server?.stop();
  });

  test('the connection gets GOAWAY ENHANCE_YOUR_CALM and is closed; few of its requests reach Python; others are answered', async (t) => {
    const session = await connect(server.port);
    await h2(session, { ':path': '/inflight/reset' });
    const connection = await RawH2.open(server.port, ca);
    const bursts = 5_000;
    let sent = 0;
    for (let id = 1; sent < bursts && !connection.closed; sent += 100) {
      const frames: Buffer[] = [];
      for (let i = 0; i < 100; i += 1, id += 2) frames.push(connection.headers(id, 'GET', `/inflight?s=0&tag=r`), rstFrame(id));
      connection.write(Buffer.concat(frames));
      // Let the server read between writes, as a network would.
      await new Promise((resolve) => setImmediate(resolve));
    }
    const goaway = await connection.waitFor((f) => f.type === FrameType.GOAWAY);
    const report = async (): Promise<string[]> => (JSON.parse((await h2(session, { ':path': '/inflight/report' })).body.toString()) as { ran: string[] }).ran;
    t.diagnostic(`sent ${sent} reset streams; GOAWAY code ${goaway?.payload.readUInt32BE(4)}; ${(await report()).length} of them ran in Python`);
    assert.ok(goaway !== null, 'GOAWAY received');
    assert.equal(goaway.payload.readUInt32BE(4), 0xb, 'ENHANCE_YOUR_CALM');
    await connection.whenClosed;
    const normal = await h2(session, { ':path': '/inflight?s=0&tag=normal' });
    const ran = await report();
    session.close();
    assert.ok(ran.length < 1_000, `${ran.length} of the reset requests ran`);
    assert.equal(normal.status, 200);
  });
});

/** Everything a raw TCP or TLS connection receives until the server closes it (or `timeoutMs`). */
function exchangeBytes(socket: Socket | TLSSocket, bytes: Buffer, timeoutMs = 5_000): Promise<{ response: string; closedByServer: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    let closedByServer = false;
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => { closedByServer = true; });
    socket.on('error', () => { closedByServer = true; });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ response: Buffer.concat(chunks).toString('latin1'), closedByServer });
    });
    socket.write(bytes);
  });
}

describe('HTTP/2 bytes where HTTP/1.1 is spoken, and floods of HTTP/2 control frames', () => {
  let plain: StartedServer;
  let tls: StartedServer;

  before(async () => {
    [plain, tls] = await Promise.all([
      startServer(['--app', 'suite:app', '-f', apps, '--processes', '1']),
      startServer(['--app', 'suite:app', '-f', apps, '--processes', '1', ...tlsArgs], { scheme: 'https' }),
    ]);
  });
  after(async () => {
    await Promise.all([plain?.stop(), tls?.stop()]);
  });

  test('the HTTP/2 preface on a plain HTTP/1.1 port gets 400 and a close (no h2c); the server answers the next client', async () => {
    const socket = netConnect({ host: '127.0.0.1', port: plain.port });
    await once(socket, 'connect');
    const answer = await exchangeBytes(socket, Buffer.concat([PREFACE, settingsFrame()]));
    assert.match(answer.response, /^HTTP\/1\.1 400 /);
    assert.ok(answer.closedByServer);
    const next = netConnect({ host: '127.0.0.1', port: plain.port });
    await once(next, 'connect');
    assert.match((await exchangeBytes(next, Buffer.from('GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'))).response, /^HTTP\/1\.1 200 /);
  });

  test('the HTTP/2 preface on a TLS connection that chose http/1.1 gets 400 and a close', async () => {
    const socket = tlsConnect({ host: '127.0.0.1', port: tls.port, ca, servername: 'localhost', ALPNProtocols: ['http/1.1'] });
    await once(socket, 'secureConnect');
    const answer = await exchangeBytes(socket, Buffer.concat([PREFACE, settingsFrame()]));
    assert.match(answer.response, /^HTTP\/1\.1 400 /);
    assert.ok(answer.closedByServer);
  });

  const floods: { name: string; frames: (connection: RawH2) => Buffer }[] = [
    { name: '100,000 PINGs', frames: () => Buffer.concat(Array.from({ length: 100_000 }, () => frame(FrameType.PING, 0, 0, Buffer.alloc(8)))) },
    { name: '100,000 empty SETTINGS', frames: () => Buffer.concat(Array.from({ length: 100_000 }, () => settingsFrame())) },
    {
      name: 'HEADERS then 100,000 empty CONTINUATION frames (CVE-2024-27983 style)',
      frames: () => Buffer.concat([frame(FrameType.HEADERS, Flag.END_STREAM, 1, requestBlock('GET', '/hello')),
        ...Array.from({ length: 100_000 }, () => frame(FrameType.CONTINUATION, 0, 1))]),
    },
    {
      name: '10,000 requests after the client\'s own GOAWAY',
      frames: (c) => Buffer.concat([frame(FrameType.GOAWAY, 0, 0, Buffer.alloc(8)), ...Array.from({ length: 10_000 }, (_, i) => c.headers(1 + 2 * i, 'GET', '/hello'))]),
    },
  ];
  for (const { name, frames } of floods) {
    test(`${name}: the server closes the connection, its memory stays put, and it answers others`, async (t) => {
      const rssBefore = rssBytes(tls.process.pid!);
      const connection = await RawH2.open(tls.port, ca);
      connection.write(frames(connection));
      const session = await connect(tls.port);
      const answer = await h2(session, { ':path': '/hello' });
      session.close();
      await connection.whenClosed;
      const growth = rssBytes(tls.process.pid!) - rssBefore;
      t.diagnostic(`front RSS growth ${(growth / 1e6).toFixed(1)} MB`);
      assert.equal(answer.status, 200);
      assert.ok(growth < 100e6, `RSS grew ${growth} bytes`);
    });
  }
});

/** Requests queued or inside the application, from a metrics text. */
function busyIn(text: string): number {
  let total = 0;
  for (const line of text.split('\n')) {
    const match = /^w2n_(?:requests_in_app|queue_length) (\S+)$/.exec(line);
    if (match !== null) total += Number(match[1]);
  }
  return total;
}

/** /metrics over plain HTTP/1.1. */
function metricsText(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => { body += chunk.toString(); });
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

/**
 * Reads the front's RSS until the attack has run its course: nothing queued or in the
 * application, and the RSS no higher than at the read before (it only grows while answers or
 * bodies pile up). Returns the growth over `before`.
 */
async function settledGrowth(server: StartedServer, before: number): Promise<number> {
  let last = -1;
  const session = server.url('/').startsWith('https') ? await connect(server.port) : null;
  const readMetrics = session === null
    ? () => metricsText(server.port)
    : async () => (await h2(session, { ':path': '/metrics' })).body.toString();
  try {
    return await poll(async () => {
      const busy = busyIn(await readMetrics());
      await pollPause(250); // the RSS is sampled a while after the load count: memory has no "settled" event
      const rss = rssBytes(server.process.pid!);
      const isSettled = busy === 0 && rss <= last + 512 * 1024;
      last = rss;
      return isSettled ? rss - before : -1;
    }, (growth) => growth >= 0, 60_000);
  } finally {
    session?.close();
  }
}

describe('memory one client can make the front hold', () => {
  let server: StartedServer;

  before(async () => {
    server = await startServer(['--app', 'suite:app', '-f', apps, '--processes', '2', '--threads', '16', '--max-connections', '5000', ...tlsArgs],
      { scheme: 'https' });
  });
  after(async () => {
    await server?.stop();
  });

  test('HTTP/1.1: pipelined requests for whole answers on connections that never read', async (t) => {
    const before = rssBytes(server.process.pid!);
    const sockets: TLSSocket[] = [];
    const request = 'GET /framing/list?n=262144&parts=1 HTTP/1.1\r\nHost: x\r\n\r\n';
    for (let i = 0; i < 4; i += 1) {
      const socket = tlsConnect({ host: '127.0.0.1', port: server.port, ca, servername: 'localhost', ALPNProtocols: ['http/1.1'] });
      await once(socket, 'secureConnect');
      socket.pause();
      socket.write(request.repeat(500));
      sockets.push(socket);
    }
    const growth = await settledGrowth(server, before);
    for (const socket of sockets) socket.destroy();
    t.diagnostic(`2,000 pipelined 256 KiB answers unread: front RSS +${(growth / 1e6).toFixed(0)} MB`);
    assert.ok(growth < 100e6, `RSS grew ${(growth / 1e6).toFixed(0)} MB`);
  });

  test('pipelined requests on a connection that reads are all answered, in order', async () => {
    const socket = tlsConnect({ host: '127.0.0.1', port: server.port, ca, servername: 'localhost', ALPNProtocols: ['http/1.1'] });
    await once(socket, 'secureConnect');
    const requests = [1, 2, 3, 4, 5].map((n) => `GET /framing/list?n=${n * 100_000}&parts=1 HTTP/1.1\r\nHost: x\r\n${n === 5 ? 'Connection: close\r\n' : ''}\r\n`);
    const { response } = await exchangeBytes(socket, Buffer.from(requests.join('')), 20_000);
    const lengths = [...response.matchAll(/Content-Length: (\d+)/gi)].map((match) => Number(match[1]));
    assert.deepEqual(lengths, [100_000, 200_000, 300_000, 400_000, 500_000]);
  });

  test('HTTP/2: 60 requests at once on a session that reads are all answered (past the 16 a session has in the pool)', async () => {
    const session = await connect(server.port);
    const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => h2(session, { ':path': `/framing/list?n=${100_000 + i}&parts=1` })));
    session.close();
    assert.deepEqual(answers.map((answer) => answer.body.length), Array.from({ length: 60 }, (_, i) => 100_000 + i));
  });

  test('HTTP/2: big answers on many streams of sessions whose window is 0 (no WINDOW_UPDATE ever)', async (t) => {
    const before = rssBytes(server.process.pid!);
    const sessions: ClientHttp2Session[] = [];
    const started: Promise<unknown>[] = [];
    for (let i = 0; i < 10; i += 1) {
      const session = await connect(server.port, { initialWindowSize: 0 });
      let answers = 0;
      let onSixteen: () => void = () => undefined;
      started.push(new Promise<void>((resolve) => { onSixteen = resolve; }));
      for (let s = 0; s < 100; s += 1) {
        const stream = session.request({ ':path': '/framing/list?n=262144&parts=1' });
        stream.on('error', () => undefined);
        // HEADERS are not flow-controlled: an answer has started when its HEADERS are in.
        stream.once('response', () => { if (++answers === 16) onSixteen(); });
      }
      sessions.push(session);
    }
    // At least 16 answers on each session (all 100 without a bound), then until nothing runs.
    await Promise.all(started);
    const growth = await settledGrowth(server, before);
    for (const session of sessions) session.destroy();
    t.diagnostic(`1,000 streams of 256 KiB whole answers, window 0: front RSS +${(growth / 1e6).toFixed(0)} MB`);
    assert.ok(growth < 100e6, `RSS grew ${(growth / 1e6).toFixed(0)} MB`);
  });

  test('chunked uploads (--chunked-input spool) that never finish, each under --body-buffer-size', async (t) => {
    // Plain HTTP, a few connections with big bodies: the front's memory is the bodies, not TLS.
    const plain = await startServer(['--app', 'suite:app', '-f', apps, '--processes', '1', '--chunked-input', 'spool',
      '--body-buffer-size', '16m', '--max-body', '64m']);
    try {
      const before = rssBytes(plain.process.pid!);
      const sockets: Socket[] = [];
      const chunk = Buffer.alloc(1024 * 1024, 'u');
      const piece = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]);
      const written: Promise<unknown>[] = [];
      for (let i = 0; i < 20; i += 1) {
        const socket = netConnect({ host: '127.0.0.1', port: plain.port });
        socket.on('error', () => undefined);
        await once(socket, 'connect');
        // 15 MiB each, no last chunk: under --body-buffer-size, so without a total cap all of it stays in memory.
        const head = Buffer.from('POST /sized HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
        written.push(new Promise((resolve) => socket.write(Buffer.concat([head, ...Array.from({ length: 15 }, () => piece)]), resolve)));
        sockets.push(socket);
      }
      await Promise.all(written);
      const growth = await settledGrowth(plain, before);
      for (const socket of sockets) socket.destroy();
      t.diagnostic(`20 unfinished chunked uploads of 15 MiB: front RSS +${(growth / 1e6).toFixed(0)} MB`);
      assert.ok(growth < 100e6, `RSS grew ${(growth / 1e6).toFixed(0)} MB`);
    } finally {
      await plain.stop();
    }
  });
});
