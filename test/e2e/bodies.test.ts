/**
 * Black-box: request bodies. Chunked bodies spooled (memory, then an unlinked temp file) and
 * handed over with CONTENT_LENGTH, as web2py reads them; --max-body by Content-Length and by
 * chunked growth (413, connection closed, nothing left in --spool-dir); `Expect: 100-continue`
 * answered only when the body is going to be read; `--chunked-input stream` as before.
 *
 * Whether a body went through a temp file is seen in /proc/<front pid>/fd: the file is unlinked
 * at once, so the listing of --spool-dir stays empty and only the open descriptor shows it. A
 * spooled file is read by the worker itself (BODY_FILE: its own descriptor shows it), or streamed
 * to it when it cannot open the front's (bodyfile_refused.py).
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixtures, frontPid as frontPidOf, startServer, waitForLog, type StartedServer } from '../helpers/server.js';
import { rawRequest, RawConnection } from '../helpers/raw-http.js';
import { deliberateWait, waitUntil } from '../helpers/waits.js';

const apps = join(fixtures, 'apps');
const MIB = 1024 * 1024;
const MAX_BODY = 8 * MIB;

interface Sized { content_length: string | null; transfer_encoding: string | null; bytes: number; sha256: string }
/** test/fixtures/apps/bodyfile.py: `files` are the worker's own descriptors of a spooled body's temp file. */
interface BodyFileInfo { bytes: number; sha256: string; files: string[] }

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** Descriptors of the front process that point into `dir` (spool files show as `<dir>/w2n-body-… (deleted)`). */
function spoolDescriptors(pid: number, dir: string): string[] {
  const links: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (target.startsWith(`${dir}/`)) links.push(target);
    } catch {
      // closed while listing
    }
  }
  return links;
}

function waitFor(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  return waitUntil(what, check, timeoutMs);
}

function writeAll(req: ClientRequest, data: Buffer, pieceBytes = 64 * 1024): Promise<void> {
  return new Promise((resolve, reject) => {
    let offset = 0;
    const pump = (): void => {
      while (offset < data.length) {
        const piece = data.subarray(offset, offset + pieceBytes);
        offset += piece.length;
        if (!req.write(piece)) {
          req.once('drain', pump);
          return;
        }
      }
      resolve();
    };
    req.once('error', reject);
    pump();
  });
}

/** A POST, chunked unless `headers` give a Content-Length; the body is written by the caller. */
function post(port: number, path: string, headers: Record<string, string> = {}): { req: ClientRequest; answer: Promise<{ res: IncomingMessage; body: Buffer }> } {
  const framing = 'Content-Length' in headers ? {} : { 'Transfer-Encoding': 'chunked' };
  const req = request({ host: '127.0.0.1', port, path, method: 'POST', agent: false, headers: { ...framing, ...headers } });
  const answer = new Promise<{ res: IncomingMessage; body: Buffer }>((resolve, reject) => {
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ res, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
  return { req, answer };
}

function chunkFrame(data: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')]);
}


/** The front closed every spool file of `dir` (its descriptors), and none is left on disk. */
async function spoolReleased(pid: number, dir: string): Promise<void> {
  await waitFor('the spool file to be closed', () => spoolDescriptors(pid, dir).length === 0);
  assert.deepEqual(readdirSync(dir), []);
}
describe('spooled chunked bodies (the default)', () => {
  let server: StartedServer;
  let spoolDir: string;
  before(async () => {
    spoolDir = mkdtempSync(join(tmpdir(), 'w2n-spool-'));
    server = await startServer(['--app', 'suite:app', '-f', apps, '--processes', '1', '--threads', '4',
      '--max-body', String(MAX_BODY), '--spool-dir', spoolDir]);
  });
  after(async () => {
    await server.stop();
    rmSync(spoolDir, { recursive: true, force: true });
  });
  const frontPid = (): number => frontPidOf(server);

  test('5 MiB chunked upload goes through a temp file and is read by CONTENT_LENGTH; nothing is left behind', async () => {
    const body = randomBytes(5 * MIB);
    const { req, answer } = post(server.port, '/sized');
    await writeAll(req, body.subarray(0, 2 * MIB));
    // Past --body-buffer-size (1 MiB): the front now holds an unlinked file in the spool folder.
    await waitFor('a spool file', () => spoolDescriptors(frontPid(), spoolDir).length > 0);
    assert.match(spoolDescriptors(frontPid(), spoolDir)[0]!, /\/w2n-body-[^/]+ \(deleted\)$/);
    assert.deepEqual(readdirSync(spoolDir), []);
    await writeAll(req, body.subarray(2 * MIB));
    req.end();
    const { res, body: raw } = await answer;
    assert.equal(res.statusCode, 200, raw.toString());
    const info = JSON.parse(raw.toString()) as Sized;
    assert.equal(info.content_length, String(body.length));
    assert.equal(info.transfer_encoding, null);
    assert.equal(info.bytes, body.length);
    assert.equal(info.sha256, sha256(body));
    await spoolReleased(frontPid(), spoolDir);
  });

  test('small chunked body (in memory) and an empty one get their CONTENT_LENGTH', async () => {
    for (const body of [Buffer.from('name=web2py&x=1'), Buffer.alloc(0)]) {
      const { req, answer } = post(server.port, '/sized', { 'Content-Type': 'application/x-www-form-urlencoded' });
      req.end(body);
      const { res, body: raw } = await answer;
      assert.equal(res.statusCode, 200);
      const info = JSON.parse(raw.toString()) as Sized;
      assert.deepEqual(info, { content_length: String(body.length), transfer_encoding: null, bytes: body.length, sha256: sha256(body) });
    }
  });

  test('one-byte chunks are gathered whole', async () => {
    const body = randomBytes(3000);
    const frames = Buffer.concat([...body].map((byte) => chunkFrame(Buffer.from([byte]))));
    const head = `POST /sized HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`;
    const { response } = await rawRequest(server.port, Buffer.concat([Buffer.from(head), frames, Buffer.from('0\r\n\r\n')]));
    assert.match(response, /^HTTP\/1\.1 200 /);
    const info = JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4)) as Sized;
    assert.deepEqual([info.content_length, info.bytes, info.sha256], ['3000', 3000, sha256(body)]);
  });

  test('a client that leaves mid-upload leaves no temp file and no open descriptor', async () => {
    const { req, answer } = post(server.port, '/sized');
    answer.catch(() => undefined);
    await writeAll(req, randomBytes(3 * MIB));
    await waitFor('a spool file', () => spoolDescriptors(frontPid(), spoolDir).length > 0);
    req.destroy();
    await spoolReleased(frontPid(), spoolDir);
    const { response } = await rawRequest(server.port, 'GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(response, /^HTTP\/1\.1 200 /);
  });

  test('the worker dies with a spooled body: 502, and the spool file is closed', async () => {
    const { req, answer } = post(server.port, '/crash/exit');
    await writeAll(req, randomBytes(3 * MIB));
    req.end();
    const { res } = await answer;
    assert.equal(res.statusCode, 502);
    await spoolReleased(frontPid(), spoolDir);
  });

  test('a spooled body on disk is read by the worker from the front\'s own file (BODY_FILE), then closed on both sides', async () => {
    const body = randomBytes(5 * MIB);
    const { req, answer } = post(server.port, '/bodyfile');
    await writeAll(req, body);
    req.end();
    const { res, body: raw } = await answer;
    assert.equal(res.statusCode, 200, raw.toString());
    const info = JSON.parse(raw.toString()) as BodyFileInfo;
    assert.deepEqual([info.bytes, info.sha256], [body.length, sha256(body)]);
    // The worker's own descriptor of the unlinked temp file (it closes it once the request is done).
    assert.equal(info.files.length, 1, JSON.stringify(info.files));
    assert.match(info.files[0]!, new RegExp(`^${spoolDir}/w2n-body-[^/]+ \\(deleted\\)$`));
    await spoolReleased(frontPid(), spoolDir);
  });

  test('the worker is killed while it reads the body\'s file: 502, the front\'s descriptor closed, the next one served', async () => {
    const { req, answer } = post(server.port, '/bodyfile/kill');
    await writeAll(req, randomBytes(3 * MIB));
    req.end();
    const { res } = await answer;
    assert.equal(res.statusCode, 502);
    await spoolReleased(frontPid(), spoolDir);
    const body = randomBytes(2 * MIB);
    const again = post(server.port, '/bodyfile');
    await writeAll(again.req, body);
    again.req.end();
    const { res: next, body: raw } = await again.answer;
    assert.equal(next.statusCode, 200, raw.toString());
    assert.equal((JSON.parse(raw.toString()) as BodyFileInfo).sha256, sha256(body));
  });

  test('Content-Length above --max-body: 413 before the body is read, connection closed', async () => {
    const { response, closedByServer } = await rawRequest(server.port,
      `POST /sized HTTP/1.1\r\nHost: x\r\nContent-Length: ${MAX_BODY + 1}\r\n\r\n`);
    assert.match(response, /^HTTP\/1\.1 413 Payload Too Large\r\n/);
    assert.match(response, /\r\nConnection: close\r\n/i);
    assert.ok(closedByServer);
    // Exactly at the limit is allowed.
    const { req, answer } = post(server.port, '/sized', { 'Content-Length': String(MAX_BODY) });
    req.end(Buffer.alloc(MAX_BODY, 1));
    const { res, body } = await answer;
    assert.equal(res.statusCode, 200);
    assert.equal((JSON.parse(body.toString()) as Sized).bytes, MAX_BODY);
  });

  test('after a 413 the front lingers: a client still sending is read and discarded, not reset', async () => {
    // allowHalfOpen: the client goes on sending after the server's FIN, as an uploading browser does.
    const socket = connect({ host: '127.0.0.1', port: server.port, allowHalfOpen: true });
    await once(socket, 'connect');
    let answer = '';
    socket.on('data', (c: Buffer) => { answer += c.toString('latin1'); });
    const serverEnded = once(socket, 'end');
    const send = (bytes: Buffer | string): Promise<Error | null | undefined> => new Promise((resolve) => socket.write(bytes, resolve));
    await send(`POST /sized HTTP/1.1\r\nHost: x\r\nContent-Length: ${3 * MAX_BODY}\r\n\r\n`);
    await send(Buffer.alloc(MIB, 2));
    await serverEnded;
    assert.match(answer, /^HTTP\/1\.1 413 Payload Too Large\r\n/);
    assert.match(answer, /\r\nConnection: close\r\n/i);
    // A server that closed at once would answer these bytes with a reset (EPIPE / ECONNRESET).
    const errors: string[] = [];
    socket.on('error', (error: NodeJS.ErrnoException) => errors.push(error.code ?? error.message));
    // More than the kernel buffers hold: a closed peer cannot absorb it.
    for (let i = 0; i < 256; i += 1) await send(Buffer.alloc(64 * 1024, 2));
    socket.end();
    await once(socket, 'close');
    assert.deepEqual(errors, []);
  });

  test('a chunked body growing past --max-body: 413 when it crosses, connection closed, spool released', async () => {
    const conn = await RawConnection.open(server.port);
    await conn.send('POST /sized HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
    const piece = chunkFrame(Buffer.alloc(64 * 1024, 3));
    let sent = 0;
    while (conn.received === '' && sent <= 2 * MAX_BODY) {
      if (!await conn.send(piece)) break;
      sent += 64 * 1024;
    }
    await conn.until(/\r\n\r\n.*limited to \d+ bytes\n$/s);
    assert.match(conn.received, /^HTTP\/1\.1 413 Payload Too Large\r\n/);
    assert.match(conn.received, /\r\nConnection: close\r\n/i);
    // Answered while the body was still unfinished (no last chunk was ever sent), not before the limit.
    assert.ok(sent > MAX_BODY, `answered after ${sent} bytes`);
    await conn.whenClosed;
    await spoolReleased(frontPid(), spoolDir);
  });

  test('Expect: 100-continue with a too-large Content-Length: 413 and never a 100', async () => {
    const { response, closedByServer } = await rawRequest(server.port,
      `POST /sized HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: ${MAX_BODY + 1}\r\n\r\n`);
    assert.match(response, /^HTTP\/1\.1 413 /);
    assert.doesNotMatch(response, /100 Continue/);
    assert.ok(closedByServer);
  });

  test('Expect: 100-continue: 100 first, then the body, then the answer (Content-Length and chunked)', async () => {
    const body = Buffer.from('hello, continue');
    const conn = await RawConnection.open(server.port);
    await conn.send(`POST /sized HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: ${body.length}\r\n\r\n`);
    await conn.until(/^HTTP\/1\.1 100 Continue\r\n\r\n/);
    await conn.send(body);
    const [, json] = await conn.until(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n.*?\r\n\r\n(\{.*\})$/s);
    assert.deepEqual(JSON.parse(json!), { content_length: String(body.length), transfer_encoding: null, bytes: body.length, sha256: sha256(body) });
    // Same connection (kept alive), chunked: the front reads the body itself, so the 100 comes at once.
    const start = conn.received.length;
    await conn.send('POST /sized HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n');
    await conn.until(new RegExp(`^[^]{${start}}HTTP/1\\.1 100 Continue\\r\\n\\r\\n`));
    await conn.send(Buffer.concat([chunkFrame(body), Buffer.from('0\r\n\r\n')]));
    const [, json2] = await conn.until(new RegExp(`^[^]{${start}}HTTP/1\\.1 100 Continue\\r\\n\\r\\nHTTP/1\\.1 200 OK\\r\\n[^]*?\\r\\n\\r\\n(\\{.*\\})$`));
    assert.equal((JSON.parse(json2!) as Sized).content_length, String(body.length));
    conn.destroy();
  });
});

describe('a worker that cannot open the front\'s file gets the spooled body as BODY frames', () => {
  let server: StartedServer;
  let spoolDir: string;
  before(async () => {
    spoolDir = mkdtempSync(join(tmpdir(), 'w2n-spool-'));
    // bodyfile_refused.py makes os.open of /proc/<pid>/fd/<n> fail in the worker (EACCES).
    server = await startServer(['--app', 'bodyfile_refused:app', '-f', apps, '--processes', '1', '--spool-dir', spoolDir]);
  });
  after(async () => {
    await server.stop();
    rmSync(spoolDir, { recursive: true, force: true });
  });

  test('FILE_OPENED 0: the front streams it; whole, and nothing left open', async () => {
    const body = randomBytes(3 * MIB + 17);
    const { req, answer } = post(server.port, '/');
    await writeAll(req, body);
    req.end();
    const { res, body: raw } = await answer;
    assert.equal(res.statusCode, 200, raw.toString());
    const info = JSON.parse(raw.toString()) as BodyFileInfo;
    assert.deepEqual(info, { bytes: body.length, sha256: sha256(body), files: [] });
    await spoolReleased(frontPidOf(server), spoolDir);
  });
});

describe('100 Continue waits for a worker', () => {
  let server: StartedServer;
  before(async () => {
    server = await startServer(['--app', 'suite:app', '-f', apps, '--processes', '1', '--worker-class', 'thread', '--threads', '1', '--queue-size', '1']);
  });
  after(async () => {
    await server.stop();
  });

  test('queued: no 100 until the request reaches the worker; answered early (503): no 100, connection closed', async () => {
    // Hold the only slot: a large download nobody reads stays in the application (flow control).
    const holder = request({ host: '127.0.0.1', port: server.port, path: '/stream?n=1073741824', agent: false });
    holder.on('error', () => undefined);
    const held = new Promise<IncomingMessage>((resolve) => holder.on('response', resolve));
    holder.end();
    (await held).pause();

    const body = Buffer.from('late body');
    const waiting = await RawConnection.open(server.port);
    await waiting.send(`POST /sized HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: ${body.length}\r\n\r\n`);
    // The queue (size 1) now holds it; one more gets 503 at once, without a 100, and is closed.
    const { response, closedByServer } = await rawRequest(server.port,
      `POST /sized HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: ${body.length}\r\n\r\n`);
    assert.match(response, /^HTTP\/1\.1 503 /);
    assert.match(response, /\r\nConnection: close\r\n/i);
    assert.doesNotMatch(response, /100 Continue/);
    assert.ok(closedByServer);
    await deliberateWait(300, 'an absence: room for a wrong early 100 Continue to arrive');
    assert.equal(waiting.received, '', 'nothing, not even 100, while the request waits for a worker');

    holder.destroy(); // frees the slot
    await waiting.until(/^HTTP\/1\.1 100 Continue\r\n\r\n/);
    await waiting.send(body);
    const [, json] = await waiting.until(/\r\n\r\nHTTP\/1\.1 200 OK\r\n.*?\r\n\r\n(\{.*\})$/s);
    assert.equal((JSON.parse(json!) as Sized).sha256, sha256(body));
    waiting.destroy();
  });
});

describe('--chunked-input stream', () => {
  let server: StartedServer;
  const limit = 1 * MIB;
  before(async () => {
    server = await startServer(['--app', 'suite:app', '-f', apps, '--processes', '1', '--chunked-input', 'stream', '--max-body', String(limit)]);
  });
  after(async () => {
    await server.stop();
  });

  test('chunked bodies pass through without CONTENT_LENGTH; read to the end they arrive whole', async () => {
    const body = randomBytes(300_000);
    const sized = post(server.port, '/sized');
    sized.req.end(body);
    const seen = JSON.parse((await sized.answer).body.toString()) as Sized;
    assert.deepEqual([seen.content_length, seen.transfer_encoding, seen.bytes], [null, 'chunked', 0]);
    const upload = post(server.port, '/upload');
    await writeAll(upload.req, body);
    upload.req.end();
    const info = JSON.parse((await upload.answer).body.toString()) as { bytes: number; sha256: string };
    assert.deepEqual(info, { bytes: body.length, sha256: sha256(body) });
  });

  test('a streamed chunked body crossing --max-body gets 413 and a closed connection', async () => {
    const conn = await RawConnection.open(server.port);
    await conn.send('POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
    const piece = chunkFrame(Buffer.alloc(64 * 1024, 4));
    for (let sent = 0; conn.received === '' && sent <= 4 * limit; sent += 64 * 1024) {
      if (!await conn.send(piece)) break;
    }
    await conn.until(/^HTTP\/1\.1 413 Payload Too Large\r\n/);
    assert.match(conn.received, /\r\nConnection: close\r\n/i);
    await conn.whenClosed;
  });
});

test('web2py: a chunked upload is read through CONTENT_LENGTH by default; with stream it would look empty (and the log says so)', async () => {
  const body = randomBytes(1536 * 1024);
  for (const mode of ['spool', 'stream']) {
    const server = await startServer(['-f', join(fixtures, 'web2py'), '--chunked-input', mode]);
    try {
      const { req, answer } = post(server.port, '/body');
      await writeAll(req, body);
      req.end();
      const { res, body: raw } = await answer;
      assert.equal(res.statusCode, 200, raw.toString());
      const seen = JSON.parse(raw.toString()) as { content_length: string | null; bytes: number; sha256: string };
      if (mode === 'spool') {
        assert.deepEqual(seen, { content_length: String(body.length), bytes: body.length, sha256: sha256(body) });
        assert.doesNotMatch(server.stderr(), /chunked_stream_web2py/);
      } else {
        assert.deepEqual([seen.content_length, seen.bytes], [null, 0]);
        await waitForLog(server, /config\.chunked_stream_web2py/);
      }
    } finally {
      await server.stop();
    }
  }
});
