/**
 * src/primary/bound-sockets.ts: the primary binds without accepting; a front inherits the
 * descriptor and listens. The socket outlives the front that listened on it, so a connection
 * made while no front is alive waits in the kernel's queue and is served by the next front.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, statSync, existsSync } from 'node:fs';
import * as net from 'node:net';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bindAll } from '../../src/primary/bound-sockets.js';
import { ServerError } from '../../src/errors/index.js';

/** A child that listens on descriptor 3 and answers each connection with `hello from <pid>`. */
function frontLike(fd: number): ReturnType<typeof spawn> {
  const script = "require('net').createServer((c) => c.end('hello from ' + process.pid)).listen({ fd: 3 }, () => process.send('listening'))";
  return spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'inherit', 'inherit', fd, 'ipc'] });
}

function readAll(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (chunk: Buffer) => { text += chunk.toString(); });
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}

test('node:net still has the function the primary binds with', () => {
  assert.equal(typeof Reflect.get(net, '_createServerHandle'), 'function');
});


test('a connection made while no front listens waits for the next front (never refused)', async () => {
  const [socket] = await bindAll([{ kind: 'tcp', ip: '127.0.0.1', port: 0, tls: null }]);
  try {
    assert.ok(socket!.port > 0);
    const first = frontLike(socket!.fd);
    await once(first, 'message');
    assert.match(await readAll(socket!.port), /^hello from \d+$/);
    first.kill('SIGKILL');
    await once(first, 'exit');
    const waiting = readAll(socket!.port); // no front now: it waits in the queue
    const second = frontLike(socket!.fd);
    assert.equal(await waiting, `hello from ${second.pid}`);
    second.kill('SIGKILL');
    await once(second, 'exit');
  } finally {
    socket!.close();
  }
});

test('a port in use is one clear error, and nothing stays bound', async () => {
  const [taken] = await bindAll([{ kind: 'tcp', ip: '127.0.0.1', port: 0, tls: null }]);
  const front = frontLike(taken!.fd); // listening: now the port is really in use
  await once(front, 'message');
  try {
    await assert.rejects(bindAll([
      { kind: 'tcp', ip: '127.0.0.1', port: 0, tls: null },
      { kind: 'tcp', ip: '127.0.0.1', port: taken!.port, tls: null },
    ]), (error: unknown) => error instanceof ServerError && error.code === 'W2N_ERR_LISTEN_IN_USE' && error.message.includes(String(taken!.port)));
  } finally {
    front.kill('SIGKILL');
    taken!.close();
  }
});

test('a Unix socket file gets its mode, and is removed when the primary lets it go', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'w2n-bound-')), 'app.sock');
  const [socket] = await bindAll([{ kind: 'unix', path, mode: 0o600 }]);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  socket!.close();
  assert.equal(existsSync(path), false);
});
