/**
 * `environ['wsgi.websocket']` for any WSGI app (issue 12, item 3): gevent-websocket's API over
 * the worker channel, with the `ws` client, in the thread and the gevent worker classes
 * (test/fixtures/apps/websockets.py). Echo text and binary, subprotocols, app-initiated close,
 * client close → receive() None, a declined upgrade is plain HTTP, oversize → 1009, a flood is
 * held back by flow control (nothing lost, not buffered by the front), a worker killed → 1011,
 * a graceful stop → 1001. A front loads `ws` at its first application WebSocket only, and the
 * realtime hub, ioredis and the static files' code only when they are configured.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { once } from 'node:events';
import { connect as connectTcp } from 'node:net';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { fixtures, frontPid, startServer, workerPids, type StartedServer } from '../helpers/server.js';
import { httpGet } from '../helpers/http-get.js';
import { makeCertificate } from '../helpers/tls.js';
import { metric } from '../helpers/realtime.js';
import { deliberateWait, pollPause, waitUntil } from '../helpers/waits.js';

const apps = join(fixtures, 'apps');

/** An interpreter that has gevent, for the gevent class's runs (Debian's python3-gevent), or null. */
const geventPython = ['/usr/bin/python3', 'python3'].find((python) => spawnSync(python, ['-c', 'import gevent'], { stdio: 'ignore' }).status === 0) ?? null;

function wsUrl(server: StartedServer, path: string): string {
  return server.url(path).replace(/^http/, 'ws');
}

/** Opens a client; resolves once open, with the messages it receives queued for `next`. */
async function connect(server: StartedServer, path: string, options: { protocols?: string[]; origin?: string } = {}): Promise<Client> {
  const ws = new WebSocket(wsUrl(server, path), options.protocols ?? [], options.origin === undefined ? {} : { origin: options.origin });
  const client = new Client(ws);
  await once(ws, 'open');
  return client;
}

class Client {
  private readonly queue: { data: Buffer; isBinary: boolean }[] = [];
  private waiter: (() => void) | null = null;
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.queue.push({ data, isBinary });
      this.waiter?.();
    });
    this.closed = new Promise((resolve) => ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })));
  }

  async next(): Promise<{ data: Buffer; isBinary: boolean }> {
    while (this.queue.length === 0) await new Promise<void>((resolve) => { this.waiter = resolve; });
    return this.queue.shift()!;
  }

  async text(): Promise<string> {
    const message = await this.next();
    assert.equal(message.isBinary, false, 'a text message');
    return message.data.toString('utf8');
  }
}

async function closesSeen(server: StartedServer): Promise<number[]> {
  return await (await fetch(server.url('/closes'))).json() as number[];
}

for (const workerClass of ['thread', 'gevent'] as const) {
  const classArgs = workerClass === 'gevent' ? ['--python', geventPython ?? 'python3', '--worker-class', 'gevent'] : ['--worker-class', 'thread'];
  const skip = workerClass === 'gevent' && geventPython === null && 'no Python here has gevent';

  test(`${workerClass}: echo text and binary, subprotocol, path/origin/version, app close, client close, decline, oversize`, { skip }, async () => {
    const server = await startServer(['--app', 'websockets:app', '-f', apps, '--processes', '1', ...classArgs, '--realtime-max-message', '64KB']);
    try {
      const echo = await connect(server, '/echo');
      assert.equal(echo.ws.extensions, '', 'no permessage-deflate, though the client offers it');
      echo.ws.send('héllo');
      assert.equal(await echo.text(), 'héllo');
      echo.ws.send(Buffer.from([0, 1, 2, 255]));
      const binary = await echo.next();
      assert.equal(binary.isBinary, true);
      assert.deepEqual([...binary.data], [0, 1, 2, 255]);
      // Counted: /metrics and the status data (the primary adds the fronts up).
      assert.equal(await metric(server.url('/metrics'), 'w2n_app_websockets_open'), 1);
      assert.equal(await metric(server.url('/metrics'), 'w2n_app_websocket_messages_total', 'direction="in"'), 2);
      assert.equal(await metric(server.url('/metrics'), 'w2n_app_websocket_messages_total', 'direction="out"'), 2);
      const status = await (await fetch(server.url('/status.json'))).json() as { now: { appWebSockets: number } };
      assert.equal(status.now.appWebSockets, 1);
      // The client closes: the app's receive() gives None and it sees the client's code.
      echo.ws.close(1000, 'done');
      assert.equal((await echo.closed).code, 1000);
      await waitUntil('the app heard the close', async () => (await closesSeen(server)).includes(1000));

      const proto = await connect(server, '/proto', { protocols: ['superchat', 'chat'] });
      assert.equal(proto.ws.protocol, 'chat');
      assert.equal(await proto.text(), 'protocol=chat');
      // The app returned after it: the front closes 1000.
      assert.equal((await proto.closed).code, 1000);

      const info = await connect(server, '/info/x', { origin: 'https://example.com' });
      assert.deepEqual(JSON.parse(await info.text()), { path: '/info/x', origin: 'https://example.com', version: '13' });
      await info.closed;

      const closing = await connect(server, '/echo');
      closing.ws.send('close-me');
      assert.deepEqual(await closing.closed, { code: 4000, reason: 'bye' });

      // Declined: the app's own answer, over plain HTTP, no 101.
      const declined = new WebSocket(wsUrl(server, '/decline'));
      const [, response] = await once(declined, 'unexpected-response') as [unknown, { statusCode: number }];
      assert.equal(response.statusCode, 403);
      declined.on('error', () => {});
      declined.terminate();

      // Larger than --realtime-max-message: ws closes 1009 and the app hears it.
      const big = await connect(server, '/echo');
      big.ws.send(Buffer.alloc(65 * 1024));
      assert.equal((await big.closed).code, 1009);
      await waitUntil('the app heard the 1009', async () => (await closesSeen(server)).includes(1009));

      // A plain GET is no WebSocket: the app sees no wsgi.websocket.
      assert.equal((await fetch(server.url('/echo'))).status, 400);
    } finally {
      await server.stop();
    }
  });

  test(`${workerClass}: a client flooding an app that does not read is held back by flow control; nothing is lost`, { skip }, async () => {
    const server = await startServer(['--app', 'websockets:app', '-f', apps, '--processes', '1', ...classArgs]);
    try {
      const hold = await connect(server, '/hold');
      assert.equal(await hold.text(), 'ready');
      const message = Buffer.alloc(60 * 1024, 0x61);
      const count = 512; // 30 MiB: far more than the front's window (256 KiB) and the kernel's buffers
      for (let i = 0; i < count; i += 1) hold.ws.send(message, { binary: true });
      // Wait until the client's buffer stops shrinking: the front no longer reads it.
      let last = -1;
      let steady = 0;
      await waitUntil('the client is held back', async () => {
        const now = hold.ws.bufferedAmount;
        steady = now === last ? steady + 1 : 0;
        last = now;
        await pollPause(30);
        return steady >= 10;
      }, 20_000);
      assert.ok(hold.ws.bufferedAmount > 10 * 1024 * 1024, `most of the flood still waits in the client (${hold.ws.bufferedAmount} bytes)`);
      await fetch(server.url('/release'));
      hold.ws.send('end');
      assert.equal(await hold.text(), `${count} ${count * message.length}`);
    } finally {
      await server.stop();
    }
  });

  test(`${workerClass}: the app raising closes 1011; its worker killed closes 1011; a graceful stop closes 1001`, { skip }, async () => {
    const server = await startServer(['--app', 'websockets:app', '-f', apps, '--processes', '1', ...classArgs]);
    let stopped = false;
    try {
      const raising = await connect(server, '/echo');
      raising.ws.send('raise');
      assert.equal((await raising.closed).code, 1011);
      await waitUntil('the failure is logged', () => /raised on request/.test(server.stderr()));

      const doomed = await connect(server, '/echo');
      doomed.ws.send('pid');
      const pid = Number(await doomed.text());
      assert.ok(workerPids(server).includes(pid));
      process.kill(pid, 'SIGKILL');
      assert.equal((await doomed.closed).code, 1011);

      await waitUntil('a fresh worker', () => workerPids(server).length === 1 && !workerPids(server).includes(pid), 20_000);
      const open = await connect(server, '/echo');
      open.ws.send('still here');
      assert.equal(await open.text(), 'still here');
      const code = server.stop();
      stopped = true;
      assert.equal((await open.closed).code, 1001);
      assert.equal(await code, 0);
    } finally {
      if (!stopped) await server.stop();
    }
  });
}

test('refused before the app: another origin 403, over the WebSocket limit 503; --timeout spares an open socket; SIGHUP closes 1001', async () => {
  const server = await startServer(['--app', 'websockets:app', '-f', apps, '--processes', '1', '--worker-class', 'thread',
    '--realtime-origins', 'https://good.example', '--realtime-max-connections', '1', '--timeout', '1']);
  try {
    const upgrade = (path: string, headers: Record<string, string>) => httpGet(server.port, path, { headers: { Connection: 'Upgrade', Upgrade: 'websocket', ...headers } });
    const refused = async (path: string, headers: Record<string, string>): Promise<number> => (await upgrade(path, headers)).status;
    const key = Buffer.alloc(16, 7).toString('base64');
    // No valid handshake: an ordinary request, and the app sees no wsgi.websocket.
    const ordinary = await upgrade('/echo', { 'Sec-WebSocket-Key': 'short', 'Sec-WebSocket-Version': '13', Origin: 'https://good.example' });
    assert.deepEqual([ordinary.status, ordinary.body.toString()], [400, 'WebSocket only']);
    assert.equal(await refused('/echo', { 'Sec-WebSocket-Key': key, 'Sec-WebSocket-Version': '13', Origin: 'https://evil.example' }), 403);

    const open = await connect(server, '/echo', { origin: 'https://good.example' });
    assert.equal(await refused('/echo', { 'Sec-WebSocket-Key': key, 'Sec-WebSocket-Version': '13', Origin: 'https://good.example' }), 503);
    assert.equal(await metric(server.url('/metrics'), 'w2n_app_websocket_refused_total'), 2);

    // Open for longer than --timeout (1 s): no 504, no cut; the deadline applies until the accept and after the close.
    await deliberateWait(1_500, 'an open WebSocket outlives --timeout');
    open.ws.send('still open');
    assert.equal(await open.text(), 'still open');

    // A reload replaces the worker: its open WebSockets are closed 1001 (clients reconnect).
    server.process.kill('SIGHUP');
    assert.equal((await open.closed).code, 1001);
    const again = await connect(server, '/echo', { origin: 'https://good.example' });
    again.ws.send('after the reload');
    assert.equal(await again.text(), 'after the reload');
    again.ws.close();
  } finally {
    await server.stop();
  }
});

test('keep-alive: a client that answers no ping is cut, and its app hears 1006', async () => {
  const server = await startServer(['--app', 'websockets:app', '-f', apps, '--processes', '1', '--worker-class', 'thread', '--realtime-ping-interval', '0.2']);
  try {
    const alive = await connect(server, '/echo');
    const silent = await connect(server, '/echo');
    // Reads nothing more: no pong goes back.
    (silent.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    await waitUntil('the app heard the cut', async () => (await closesSeen(server)).includes(1006));
    // The one that answers pings is still served.
    alive.ws.send('pong answered');
    assert.equal(await alive.text(), 'pong answered');
    alive.ws.close();
    silent.ws.terminate();
  } finally {
    await server.stop();
  }
});

test('a client that reads slower than its app sends, past --realtime-send-buffer, is closed 1013 and its app stops', async () => {
  const server = await startServer(['--app', 'websockets:app', '-f', apps, '--processes', '1', '--worker-class', 'thread', '--realtime-send-buffer', '16KB']);
  try {
    const slow = await connect(server, '/spam');
    assert.equal(await slow.text(), 'ready');
    (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    await waitUntil('the app heard 1013', async () => (await closesSeen(server)).includes(1013), 20_000);
    assert.equal(await metric(server.url('/metrics'), 'w2n_app_websocket_slow_consumers_total'), 1);
    slow.ws.terminate();
  } finally {
    await server.stop();
  }
});

test('over TLS (wss://, on the HTTP/2 server that also serves HTTP/1.1): the app\'s WebSocket works the same', async () => {
  const { cert, key } = makeCertificate();
  const server = await startServer(['--app', 'websockets:app', '-f', apps, '--processes', '1', '--worker-class', 'thread', '-c', cert, '-k', key],
    { scheme: 'https' });
  try {
    const ws = new WebSocket(server.url('/echo').replace(/^https/, 'wss'), { rejectUnauthorized: false });
    const client = new Client(ws);
    await once(ws, 'open');
    ws.send('secure');
    assert.equal(await client.text(), 'secure');
    ws.close(1000);
    assert.equal((await client.closed).code, 1000);
  } finally {
    await server.stop();
  }
});

test('an Upgrade request pipelined behind another is served once the first answer is out: as a request, or upgraded', async () => {
  const server = await startServer(['--app', 'websockets:app', '-f', apps, '--processes', '1', '--worker-class', 'thread']);
  try {
    const exchange = async (key: string, until: RegExp): Promise<string> => {
      const socket = connectTcp(server.port, '127.0.0.1');
      let text = '';
      const done = new Promise<void>((resolve) => socket.on('data', (chunk: Buffer) => {
        text += chunk.toString('latin1');
        if (until.test(text)) resolve();
      }));
      socket.write('GET /closes HTTP/1.1\r\nHost: a\r\n\r\n'
        + `GET /echo HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      await done;
      socket.destroy();
      return text;
    };
    // No valid key: an ordinary request, answered after the first.
    assert.match(await exchange('bad', /WebSocket only/), /^HTTP\/1\.1 200 OK[\s\S]*HTTP\/1\.1 400 Bad Request[\s\S]*WebSocket only$/);
    assert.match(await exchange(Buffer.alloc(16, 1).toString('base64'), /\r\n\r\n[\s\S]*101 Switching Protocols[\s\S]*\r\n\r\n/),
      /^HTTP\/1\.1 200 OK[\s\S]*HTTP\/1\.1 101 Switching Protocols/);
  } finally {
    await server.stop();
  }
});

test('a handshake reset while it waits for a worker costs that connection only: the front does not crash', async () => {
  const server = await startServer(['--app', 'websockets:app', '-f', apps, '--processes', '1', '--worker-class', 'thread', '--threads', '1']);
  try {
    const front = frontPid(server);
    // /hold takes the one slot; the next handshake waits in the queue, its socket in the front's hands.
    const hold = await connect(server, '/hold');
    assert.equal(await hold.text(), 'ready');
    const queued = connectTcp(server.port, '127.0.0.1');
    queued.on('error', () => {});
    await once(queued, 'connect');
    queued.write(`GET /echo HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: ${Buffer.alloc(16, 2).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    await waitUntil('the handshake is queued', async () => await metric(server.url('/metrics'), 'w2n_queue_length') === 1);
    queued.resetAndDestroy(); // RST: the front's read fails with ECONNRESET
    // The front dropped the queued request (no slot leaked) and still answers.
    await waitUntil('the queue is empty again', async () => await metric(server.url('/metrics'), 'w2n_queue_length') === 0);
    assert.equal(frontPid(server), front, 'the same front');
    assert.doesNotMatch(server.stderr(), /front\.crashed/);
    hold.ws.terminate();
  } finally {
    await server.stop();
  }
});

test('a malformed Sec-WebSocket-Protocol, or HTTP/1.0, is no WebSocket handshake: the app answers it as a request (never a 101 logged for a 400)', async () => {
  const server = await startServer(['--app', 'websockets:app', '-f', apps, '--processes', '1', '--worker-class', 'thread', '--access-log', '-', '--access-log-format', 'json']);
  try {
    const ask = async (head: string): Promise<string> => {
      const socket = connectTcp(server.port, '127.0.0.1');
      let text = '';
      const done = new Promise<void>((resolve) => {
        socket.on('data', (chunk: Buffer) => {
          text += chunk.toString('latin1');
          if (/\r\n\r\n[\s\S]*(?:WebSocket only|protocol=chat)/.test(text)) resolve();
        });
        socket.on('close', () => resolve());
      });
      socket.write(`GET /proto HTTP/${head}\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: ${Buffer.alloc(16, 3).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      await done;
      socket.destroy();
      return text;
    };
    for (const bad of ['1.1\r\nSec-WebSocket-Protocol: chat, chat', '1.1\r\nSec-WebSocket-Protocol: ,,, chat', '1.1\r\nSec-WebSocket-Protocol: chat,', '1.1\r\nSec-WebSocket-Protocol: "chat"', '1.0\r\nSec-WebSocket-Protocol: chat']) {
      assert.match(await ask(bad), /^HTTP\/1\.1 400 Bad Request\r\n[\s\S]*X-Request-ID: [\s\S]*WebSocket only$/, JSON.stringify(bad));
    }
    // Well formed (whitespace around the commas, as ws takes it): upgraded.
    assert.match(await ask('1.1\r\nSec-WebSocket-Protocol: superchat ,\tchat'), /^HTTP\/1\.1 101 Switching Protocols\r\n[\s\S]*Sec-WebSocket-Protocol: chat\r\n/);
    await waitUntil('six access lines', () => server.stdout().split('\n').filter((line) => line.includes('"uri":"/proto"')).length === 6);
    const statuses = server.stdout().split('\n').filter((line) => line.includes('"uri":"/proto"')).map((line) => (JSON.parse(line) as { status: number }).status);
    assert.deepEqual(statuses, [400, 400, 400, 400, 400, 101]);
  } finally {
    await server.stop();
  }
});

/** What the front of a server started with test/fixtures/processes/loaded-modules.mjs has loaded so far. */
function frontLoaded(server: StartedServer, file: string): string[] {
  const front = `${frontPid(server)} `;
  return readFileSync(file, 'utf8').split('\n').filter((line) => line.startsWith(front)).map((line) => line.slice(front.length));
}

test('a front loads `ws` at its first application WebSocket, the realtime hub only when on, ioredis only with --realtime-redis, the static files\' code only with static offload', async () => {
  const folder = mkdtempSync(join(tmpdir(), 'w2n-loads-'));
  const file = join(folder, 'loaded');
  const env = { NODE_OPTIONS: `--import ${join(fixtures, 'processes', 'loaded-modules.mjs')}`, LOADED_MODULES_LOG: file };
  const hub = /\/front\/realtime\/(?:start|hub)\.js$/;
  // An application other than web2py: no static offload, so nothing of it either.
  const lazy = [/\/node_modules\/(?:ws|ioredis|send|fresh|etag|mime-types)\//, hub, /\/front\/static\/(?:serve|file-cache)\.js$/];
  try {
    const server = await startServer(['--app', 'websockets:app', '-f', apps, '--processes', '1', '--worker-class', 'thread'], { env });
    try {
      const loaded = frontLoaded(server, file);
      assert.ok(loaded.some((url) => url.endsWith('/dist/server.js')), 'the log has the front\'s modules');
      assert.deepEqual(loaded.filter((url) => lazy.some((pattern) => pattern.test(url))), []);
      const echo = await connect(server, '/echo');
      echo.ws.send('first');
      assert.equal(await echo.text(), 'first', 'the first WebSocket, served once `ws` is loaded');
      echo.ws.close();
      await echo.closed;
      const after = frontLoaded(server, file);
      assert.ok(after.some((url) => /\/node_modules\/ws\//.test(url)), '`ws` loaded for it');
      assert.deepEqual(after.filter((url) => /\/node_modules\/ioredis\//.test(url) || hub.test(url)), []);
    } finally {
      await server.stop();
    }
    rmSync(file, { force: true });
    const withHub = await startServer(['--app', 'websockets:app', '-f', apps, '--processes', '1', '--worker-class', 'thread', '--realtime-key', 'k'], { env });
    try {
      const loaded = frontLoaded(withHub, file);
      assert.ok(loaded.some((url) => hub.test(url)), 'the hub loaded at start-up');
      assert.deepEqual(loaded.filter((url) => /\/node_modules\/ioredis\//.test(url)), []);
    } finally {
      await withHub.stop();
    }
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

test('first handshakes at once on a fresh front, some cut while `ws` loads: the others open, the front lives', async () => {
  const server = await startServer(['--app', 'websockets:app', '-f', apps, '--processes', '1', '--worker-class', 'thread']);
  try {
    const front = frontPid(server);
    const handshake = (key: string): string => `GET /echo HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n`
      + `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
    // Written before any WebSocket reached this front, so each waits for the one import of `ws`;
    // the cut ones are gone (reset or half-closed) before it ends.
    const cut = await Promise.all(Array.from({ length: 4 }, async (_, i) => {
      const socket = connectTcp(server.port, '127.0.0.1');
      socket.on('error', () => {});
      await once(socket, 'connect');
      socket.write(handshake(Buffer.alloc(16, i + 1).toString('base64')));
      if (i % 2 === 0) socket.resetAndDestroy();
      else socket.end();
      return socket;
    }));
    const kept = await Promise.all(Array.from({ length: 3 }, () => connect(server, '/echo')));
    for (const [i, client] of kept.entries()) {
      client.ws.send(`kept ${i}`);
      assert.equal(await client.text(), `kept ${i}`);
      client.ws.close();
      await client.closed;
    }
    for (const socket of cut) if (!socket.destroyed) socket.destroy();
    assert.equal(frontPid(server), front, 'the same front');
    assert.equal((await httpGet(server.port, '/closes')).status, 200);
  } finally {
    await server.stop();
  }
});
