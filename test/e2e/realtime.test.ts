/**
 * The realtime hub as web2py apps and pages use it, over real sockets: publish and presence on
 * the prefix and on --realtime-port, the bugs of web2py's own server each fixed (see the
 * README's realtime section), bad input (signatures, sizes, handshakes, malformed frames, a
 * burst of connections dropped at once, a client that never reads), tokens, origins, the
 * Python helper inside a worker, delivery across --fronts 2, and the 1001 close at stop.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { join as joinPath } from 'node:path';
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { fixtures, repoRoot, startServer, type StartedServer } from '../helpers/server.js';
import { join, metric, publish, sign } from '../helpers/realtime.js';
import { makeCertificate } from '../helpers/tls.js';
import { waitUntil } from '../helpers/waits.js';
import { WebSocket } from 'ws';
import { request as httpsRequest } from 'node:https';

const apps = joinPath(fixtures, 'apps');
const KEY = 'test-key';
const run = promisify(execFile);

function realtimePort(server: StartedServer): number {
  const match = /realtime hub on \S+:(\d+)/.exec(server.stdout());
  assert.ok(match, server.stdout());
  return Number(match[1]);
}

/** A raw TCP connection that sends a WebSocket handshake; `answer` resolves with the first bytes back. */
function rawHandshake(port: number, path: string, headers: Record<string, string> = {}): { socket: Socket; answer: Promise<string> } {
  const socket = connect(port, '127.0.0.1');
  const all = { Host: `127.0.0.1:${port}`, Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Key': randomBytes(16).toString('base64'), 'Sec-WebSocket-Version': '13', ...headers };
  socket.write(`GET ${path} HTTP/1.1\r\n${Object.entries(all).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
  socket.on('error', () => {});
  const answer = new Promise<string>((resolve) => {
    let text = '';
    socket.on('data', (chunk: Buffer) => { text += chunk.toString('latin1'); if (text.includes('\r\n\r\n')) resolve(text); });
    socket.on('close', () => resolve(text));
  });
  return { socket, answer };
}

function until(check: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  return waitUntil(what, check, timeoutMs);
}

describe('hub on one front: wire protocol, web2py bugs fixed, bad input', () => {
  let server: StartedServer;
  let port: number;
  let ws: (path: string) => string;
  let post: string;
  before(async () => {
    server = await startServer(['--app', 'realtime_page:app', '-f', apps, '--processes', '1', '--realtime-key', KEY, '--realtime-port', '0',
      '--realtime-max-message', '256k', '--realtime-send-buffer', '64k', '--log-level', 'debug', '--log-format', 'json']);
    port = realtimePort(server);
    ws = (path) => `ws://127.0.0.1:${server.port}/_ws/${path}`;
    post = server.url('/_ws/');
  });
  after(async () => { await server.stop(); });

  test('publish reaches the group on the prefix and on --realtime-port; presence +name/-name to the others', async () => {
    const ann = await join(ws('realtime/chat/none/ann'));
    const bob = await join(`ws://127.0.0.1:${port}/realtime/chat/none/bob`);
    const other = await join(ws('realtime/elsewhere'));
    assert.deepEqual(await ann.received(1), ['+bob']);
    assert.equal(await publish(post, 'hello', KEY, 'chat'), 200);
    assert.equal(await publish(`http://127.0.0.1:${port}/`, 'via port', KEY, 'chat'), 200);
    assert.deepEqual(await bob.received(2), ['hello', 'via port']);
    bob.ws.close();
    assert.deepEqual(await ann.received(4), ['+bob', 'hello', 'via port', '-bob']);
    assert.deepEqual(other.messages, []);
    ann.ws.close();
    other.ws.close();
  });

  test('a signature that is wrong or missing: 401 and nothing delivered (web2py v3.3.3 broadcast it anyway)', async () => {
    const member = await join(ws('realtime/sig'));
    const wrong = await fetch(post, { method: 'POST', body: new URLSearchParams({ message: 'forged', signature: sign('forged', 'other'), group: 'sig' }) });
    assert.equal(wrong.status, 401);
    const missing = await fetch(post, { method: 'POST', body: new URLSearchParams({ message: 'forged', group: 'sig' }) });
    assert.equal(missing.status, 401);
    assert.equal(await publish(post, 'genuine', KEY, 'sig'), 200);
    assert.deepEqual(await member.received(1), ['genuine'], 'only the signed message, which came after the forged ones');
    assert.ok(await metric(server.url('/metrics'), 'w2n_realtime_refused_total', 'signature') >= 2);
    member.ws.close();
  });

  test('no group: the default group (web2py answered 500); /realtime/<group>/<token>/<name> works (web2py raised)', async () => {
    const plain = await join(ws('realtime/default/sometoken/carol'));
    const seen = await join(ws('realtime/'));
    assert.equal(await publish(post, 'to default', KEY), 200);
    assert.deepEqual(await plain.received(2), ['+anonymous', 'to default']);
    assert.deepEqual(await seen.received(1), ['to default']);
    plain.ws.close();
    assert.deepEqual(await seen.received(2), ['to default', '-carol'], 'the name of the 3-segment path was kept');
    seen.ws.close();
  });

  test('the Python helper publishes from inside a worker (web2py\'s websocket_send raises TypeError on Python 3)', async () => {
    const member = await join(ws('realtime/py'));
    const url = new URL(server.url('/publish'));
    url.search = new URLSearchParams({ url: post, message: 'from python ✓', key: KEY, group: 'py' }).toString();
    const answer = await fetch(url);
    assert.equal(await answer.text(), 'published');
    assert.deepEqual(await member.received(1), ['from python ✓']);
    // And from a script outside the server, as an app with its own process would.
    await run('python3', ['-c', `import sys; sys.path.insert(0, ${JSON.stringify(joinPath(repoRoot, 'python'))}); `
      + `from web2py_on_node_worker.realtime import websocket_send; websocket_send(${JSON.stringify(`http://127.0.0.1:${port}`)}, 'script', ${JSON.stringify(KEY)}, 'py')`]);
    assert.deepEqual(await member.received(2), ['from python ✓', 'script']);
    member.ws.close();
  });

  test('bad requests: GET on a join path 426, unknown path 404, GET publish 405, oversize 413, no message 400', async () => {
    assert.equal((await fetch(server.url('/_ws/realtime/x'))).status, 426);
    assert.equal((await fetch(server.url('/_ws/nothing'))).status, 404);
    assert.equal((await fetch(post)).status, 405);
    const big = 'x'.repeat(256 * 1024 + 1);
    assert.equal(await publish(post, big, KEY, 'g'), 413);
    assert.equal((await fetch(post, { method: 'POST', body: new URLSearchParams({ signature: 'x' }) })).status, 400);
    assert.equal((await fetch(server.url('/elsewhere'))).status, 404, 'paths outside the prefix still reach the app');
  });

  test('handshakes with a wrong version or key are refused 400; a malformed frame closes 1002; an oversize frame 1009', async () => {
    const version = rawHandshake(server.port, '/_ws/realtime/h', { 'Sec-WebSocket-Version': '12' });
    assert.match(await version.answer, /^HTTP\/1\.1 400 /);
    const key = rawHandshake(server.port, '/_ws/realtime/h', { 'Sec-WebSocket-Key': 'not-a-key' });
    assert.match(await key.answer, /^HTTP\/1\.1 400 /);
    const unmasked = rawHandshake(server.port, '/_ws/realtime/h');
    assert.match(await unmasked.answer, /^HTTP\/1\.1 101 /);
    const closeFrame = new Promise<Buffer>((resolve) => unmasked.socket.once('data', resolve));
    unmasked.socket.write(Buffer.from([0x81, 0x02, 0x68, 0x69])); // a client frame must be masked
    const frame = await closeFrame;
    assert.equal(frame[0], 0x88);
    assert.equal(frame.readUInt16BE(2), 1002);
    unmasked.socket.destroy();
    const member = await join(ws('realtime/h'));
    member.ws.send('y'.repeat(256 * 1024 + 1));
    assert.equal(await member.closed, 1009);
  });

  test('a client that never reads is closed, not buffered without bound', async () => {
    const seatedBefore = await metric(server.url('/metrics'), 'w2n_realtime_connections');
    const reader = await join(ws('realtime/slow'));
    const stuck = rawHandshake(server.port, '/_ws/realtime/slow');
    assert.match(await stuck.answer, /^HTTP\/1\.1 101 /);
    stuck.socket.pause(); // reads nothing more: the kernel's buffers fill, then the hub's
    const stuckClosed = new Promise<void>((resolve) => stuck.socket.once('close', () => resolve()));
    let isClosed = false;
    void stuckClosed.then(() => { isClosed = true; });
    const chunk = 'z'.repeat(200 * 1024);
    let sent = 0;
    while (!isClosed && sent < 400) {
      assert.equal(await publish(post, chunk, KEY, 'slow'), 200);
      sent += 1;
      if (await metric(server.url('/metrics'), 'w2n_realtime_slow_consumers_total') >= 1) break;
    }
    assert.ok(await metric(server.url('/metrics'), 'w2n_realtime_slow_consumers_total') >= 1, `not dropped after ${sent} messages`);
    stuck.socket.destroy();
    await reader.received(sent);
    reader.ws.close();
    // Both unseated before the next test counts the seated (the server's close comes after the client's).
    await until(async () => await metric(server.url('/metrics'), 'w2n_realtime_connections') === seatedBefore, 'the slow test\'s members unseated');
  });

  test('a burst of connections opened and dropped at once: all unseated, the hub serves on, memory bounded', async () => {
    const before = await metric(server.url('/metrics'), 'w2n_front_process_resident_memory_bytes');
    const seated = await metric(server.url('/metrics'), 'w2n_realtime_connections');
    const answered: Promise<string>[] = [];
    for (let i = 0; i < 1000; i += 1) {
      const { socket, answer } = rawHandshake(server.port, `/_ws/realtime/burst/none/n${i}`);
      if (i % 2 === 0) socket.destroy(); // some before the 101, the rest right after it
      else answered.push(answer.then((text) => { socket.destroy(); return text; }));
    }
    await Promise.all(answered);
    let now = -1;
    await until(async () => (now = await metric(server.url('/metrics'), 'w2n_realtime_connections')) === seated, `every burst connection unseated (${seated} before)`, 60_000)
      .catch((error: Error) => { throw new Error(`${error.message}: ${now} now`); });
    const member = await join(ws('realtime/after-burst'));
    assert.equal(await publish(post, 'after the burst', KEY, 'after-burst'), 200);
    assert.deepEqual(await member.received(1), ['after the burst']);
    member.ws.close();
    const after = await metric(server.url('/metrics'), 'w2n_front_process_resident_memory_bytes');
    assert.ok(after - before < 200 * 1024 * 1024, `front memory grew by ${after - before} bytes`);
  });

  test('under churn (members joining and dropping abruptly), every member open throughout gets every message (web2py lost half)', async () => {
    const stable = await Promise.all(Array.from({ length: 10 }, () => join(ws('realtime/churn'))));
    let isChurning = true;
    const churner = (async () => {
      while (isChurning) {
        const batch = await Promise.all(Array.from({ length: 10 }, () => join(ws('realtime/churn'))));
        for (const member of batch) member.ws.terminate(); // abrupt: no close handshake
      }
    })();
    const statuses: number[] = [];
    for (let i = 0; i < 30; i += 1) statuses.push(await publish(post, `churn ${i}`, KEY, 'churn'));
    isChurning = false;
    await churner;
    assert.deepEqual(statuses, Array(30).fill(200));
    const expected = Array.from({ length: 30 }, (_, i) => `churn ${i}`);
    for (const member of stable) {
      const got = await member.receivedUntil((messages) => messages.includes('churn 29'));
      assert.deepEqual(got.filter((text) => text.startsWith('churn ')), expected);
      member.ws.close();
    }
  });

  test('the key is never logged or printed', () => {
    assert.ok(!server.stderr().includes(KEY) && !server.stdout().includes(KEY));
  });

  test('SIGHUP: members are closed 1001 after the drain, and the new front seats them again', async () => {
    const member = await join(ws('realtime/reload'));
    server.process.kill('SIGHUP');
    assert.equal(await member.closed, 1001);
    await until(async () => {
      try {
        (await join(ws('realtime/reload'))).ws.close();
        return true;
      } catch {
        return false;
      }
    }, 'a join after the reload');
  });
});

describe('--realtime-port over TLS with the main certificate', () => {
  let server: StartedServer;
  before(async () => {
    const { cert, key } = makeCertificate();
    server = await startServer(['--app', 'realtime_page:app', '-f', apps, '--processes', '1', '-c', cert, '-k', key,
      '--realtime-key', KEY, '--realtime-port', '0', '--realtime-max-connections', '2'], { scheme: 'https' });
  });
  after(async () => { await server.stop(); });

  test('wss:// joins and an https:// publish on the realtime port; past --realtime-max-connections, 503', async () => {
    const port = realtimePort(server);
    const ws = new WebSocket(`wss://127.0.0.1:${port}/realtime/secure`, { rejectUnauthorized: false });
    const got = new Promise<string>((resolve) => ws.once('message', (data) => resolve(String(data))));
    await once(ws, 'open');
    const body = new URLSearchParams({ message: 'over TLS', signature: sign('over TLS', KEY), group: 'secure' }).toString();
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port, path: '/', method: 'POST', rejectUnauthorized: false,
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(body);
    });
    assert.equal(status, 200);
    assert.equal(await got, 'over TLS');
    const second = new WebSocket(`wss://127.0.0.1:${port}/realtime/secure`, { rejectUnauthorized: false });
    await once(second, 'open');
    const third = new WebSocket(`wss://127.0.0.1:${port}/realtime/secure`, { rejectUnauthorized: false });
    third.on('error', () => {});
    const [, response] = await once(third, 'unexpected-response') as [unknown, { statusCode: number }];
    assert.equal(response.statusCode, 503);
    ws.close();
    second.close();
  });
});

describe('tokens, origins, keep-alive', () => {
  let server: StartedServer;
  let ws: (path: string) => string;
  const origin = 'http://app.example';
  before(async () => {
    server = await startServer(['--app', 'realtime_page:app', '-f', apps, '--processes', '1', '--realtime-key', KEY,
      '--realtime-tokens', '--realtime-origins', origin, '--realtime-ping-interval', '0.5']);
    ws = (path) => `ws://127.0.0.1:${server.port}/_ws/${path}`;
  });
  after(async () => { await server.stop(); });

  test('a token joins once; re-posted while in use 409 (web2py re-armed it); freed when its connection closes', async () => {
    await assert.rejects(join(ws('realtime/room/t1/ann'), { origin }), { status: 403 }, 'not armed');
    assert.equal(await publish(server.url('/_ws/token'), 't1', KEY), 200);
    const ann = await join(ws('realtime/room/t1/ann'), { origin });
    await assert.rejects(join(ws('realtime/room/t1/eve'), { origin }), { status: 403 }, 'a second connection with the token');
    assert.equal(await publish(server.url('/_ws/token'), 't1', KEY), 409);
    assert.equal(await publish(server.url('/_ws/token'), 't1', 'wrong-key'), 401);
    ann.ws.close();
    await ann.closed;
    await assert.rejects(join(ws('realtime/room/t1/ann'), { origin }), { status: 403 }, 'gone with its connection');
    assert.equal(await publish(server.url('/_ws/token'), 't1', KEY), 200, 'and can be armed anew');
    (await join(ws('realtime/room/t1/ann'), { origin })).ws.close();
  });

  test('--realtime-origins: a page of another origin is refused 403', async () => {
    assert.equal(await publish(server.url('/_ws/token'), 't2', KEY), 200);
    await assert.rejects(join(ws('realtime/room/t2'), { origin: 'http://evil.example' }), { status: 403 });
    (await join(ws('realtime/room/t2'), { origin })).ws.close();
  });

  test('a peer that stops answering pings is closed', async () => {
    assert.equal(await publish(server.url('/_ws/token'), 't3', KEY), 200);
    const mute = rawHandshake(server.port, '/_ws/realtime/room/t3', { Origin: origin });
    assert.match(await mute.answer, /^HTTP\/1\.1 101 /);
    await new Promise<void>((resolve) => mute.socket.once('close', () => resolve()));
  });
});

describe('--fronts 2: one instance, no Redis', () => {
  let server: StartedServer;
  before(async () => {
    server = await startServer(['--app', 'realtime_page:app', '-f', apps, '--fronts', '2', '--processes', '2', '--realtime-key', KEY]);
  });
  after(async () => { await server.stop(); });

  test('an application publishes over its worker\'s channel (publish()): members on both fronts get each message once', async () => {
    const members = [];
    for (let i = 0; i < 4; i += 1) members.push(await join(`ws://127.0.0.1:${server.port}/_ws/realtime/app/none/a${i}`));
    const before = await metric(server.url('/metrics'), 'w2n_realtime_messages_in_total', 'via="app"');
    // Each GET on a new connection: the fronts share the listening socket, so both are likely to serve some.
    for (let i = 0; i < 6; i += 1) {
      const response = await fetch(server.url(`/publish-channel?group=app&message=${encodeURIComponent(`from app ${i} é`)}`), { headers: { Connection: 'close' } });
      assert.equal(await response.text(), 'published');
    }
    const expected = Array.from({ length: 6 }, (_, i) => `from app ${i} é`);
    for (const member of members) {
      const got = await member.receivedUntil((messages) => expected.every((text) => messages.includes(text)));
      // publish() does not wait for the other front to have it, so two published back to back
      // from different fronts may cross on the way (the README says so): every one, once.
      assert.deepEqual(got.filter((text) => text.startsWith('from app')).sort(), expected, 'every message, once');
    }
    assert.equal(await metric(server.url('/metrics'), 'w2n_realtime_messages_in_total', 'via="app"') - before, 6);
    for (const member of members) member.ws.close();
  });

  test('every member on either front gets every message once, whichever front the publish reached; 1001 at stop', async () => {
    const members = [];
    for (let i = 0; i < 12; i += 1) members.push(await join(`ws://127.0.0.1:${server.port}/_ws/realtime/all/none/m${i}`));
    // Each member hears the joins after its own, from either front: +m(i+1) .. +m11, once each.
    for (const [index, member] of members.entries()) await member.receivedUntil((got) => index === 11 || got.includes('+m11'));
    for (let i = 0; i < 12; i += 1) assert.equal(await publish(server.url('/_ws/'), `message ${i}`, KEY, 'all'), 200);
    const expected = Array.from({ length: 12 }, (_, i) => `message ${i}`);
    for (const [index, member] of members.entries()) {
      const got = await member.receivedUntil((messages) => messages.includes('message 11'));
      assert.deepEqual(got.filter((text) => !text.startsWith('+')), expected, 'every message, in order, once');
      // A join on the other front just before this one may be told to it too: the relay is not instant.
      const joins = got.filter((text) => text.startsWith('+'));
      assert.equal(new Set(joins).size, joins.length, 'no notice twice');
      for (let n = index + 1; n < 12; n += 1) assert.ok(joins.includes(`+m${n}`), `m${index} was told of m${n}`);
    }
    assert.ok(await metric(server.url('/metrics'), 'w2n_realtime_messages_in_total', 'via="front"') > 0, 'relayed between the fronts');
    const codes = members.map((member) => member.closed);
    await server.stop();
    for (const code of await Promise.all(codes)) assert.equal(code, 1001);
  });
});
