/**
 * `--accept-batch` (src/front/accept-copies.ts): with N descriptors of a listening socket, one
 * event-loop turn accepts up to N queued connections; Node.js 20 alone accepts one per turn.
 *
 * How it is seen without timing anything: the event loop is blocked (spawnSync) while a child
 * process connects 20 clients, so they all wait in the kernel's queue; then we count the
 * connections accepted in the poll phase of one turn (between two `setImmediate` callbacks).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { addAcceptCopies, closeCopies } from '../../src/front/accept-copies.js';

const CLIENTS = 20;

/** Connects CLIENTS sockets to the port from another process and returns once all are connected (queued). */
function connectAllWhileBlocked(port: number): void {
  const script = `
    const net = require('node:net');
    let connected = 0;
    for (let i = 0; i < ${CLIENTS}; i++) {
      const s = net.connect(${port}, '127.0.0.1', () => { if (++connected === ${CLIENTS}) setTimeout(() => process.exit(0), 50); });
      s.on('error', () => process.exit(1));
    }`;
  const result = spawnSync(process.execPath, ['-e', script], { timeout: 10_000 });
  assert.equal(result.status, 0, 'every client connected');
}

async function acceptedInFirstTurn(batch: number): Promise<{ firstTurn: number; total: number; descriptors: number }> {
  const server: Server = createServer();
  const accepted: Socket[] = [];
  server.on('connection', (socket: Socket) => { accepted.push(socket); socket.on('error', () => {}); });
  server.listen({ port: 0, host: '127.0.0.1', backlog: 128 });
  await once(server, 'listening');
  const { copies, problem } = await addAcceptCopies([server], batch, 128);
  assert.equal(problem, null);
  try {
    const { port } = server.address() as { port: number };
    connectAllWhileBlocked(port); // blocks this event loop: the connections queue in the kernel
    // The first immediate ends the turn we are in (its poll phase may be over already); the
    // second comes right after the next turn's poll phase, where the queued connects are seen.
    const firstTurn = await new Promise<number>((resolve) => setImmediate(() => {
      const before = accepted.length;
      setImmediate(() => resolve(accepted.length - before));
    }));
    const deadline = Date.now() + 5000;
    while (accepted.length < CLIENTS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return { firstTurn, total: accepted.length, descriptors: 1 + copies[0]!.length };
  } finally {
    for (const socket of accepted) socket.destroy();
    closeCopies(copies.flat());
    server.close();
  }
}

test('one descriptor (Node alone): one connection accepted per event-loop turn', async () => {
  const { firstTurn, total, descriptors } = await acceptedInFirstTurn(1);
  assert.equal(descriptors, 1);
  assert.equal(firstTurn, 1);
  assert.equal(total, CLIENTS, 'the rest come in later turns');
});

test('eight descriptors: eight connections accepted in the first turn, all of them handed to the original server', async () => {
  const { firstTurn, total, descriptors } = await acceptedInFirstTurn(8);
  assert.equal(descriptors, 8);
  assert.equal(firstTurn, 8);
  assert.equal(total, CLIENTS);
});

test('the copies share the backlog we asked for, not Node\'s default of 511', async () => {
  // Node re-listens a received socket with backlog 511; addAcceptCopies must listen again with ours.
  const server = createServer();
  server.listen({ port: 0, host: '127.0.0.1', backlog: 77 });
  await once(server, 'listening');
  const { copies } = await addAcceptCopies([server], 3, 77);
  try {
    const { port } = server.address() as { port: number };
    const ss = spawnSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' });
    if (ss.error) return; // no ss here: nothing to read the backlog with
    const backlog = Number(ss.stdout.trim().split(/\s+/)[2]);
    assert.equal(backlog, 77, ss.stdout);
  } finally {
    closeCopies(copies.flat());
    server.close();
  }
});

test('a copy accepts sockets as the original would: half-open allowed, no Nagle delay, the same high-water mark', async () => {
  // http.Server's options; a bare net.Server (what a copy is) has none of them.
  const server = createServer({ allowHalfOpen: true, noDelay: true, highWaterMark: 12_345 });
  const accepted: Socket[] = [];
  server.on('connection', (socket: Socket) => { accepted.push(socket); socket.on('error', () => {}); });
  server.listen({ port: 0, host: '127.0.0.1' });
  await once(server, 'listening');
  const { copies } = await addAcceptCopies([server], 8, 128);
  try {
    const { port } = server.address() as { port: number };
    connectAllWhileBlocked(port); // 20 connects: most are accepted by the copies
    const deadline = Date.now() + 5000;
    while (accepted.length < CLIENTS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(accepted.length, CLIENTS);
    const noDelay = (socket: Socket): unknown => {
      const symbol = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'kSetNoDelay');
      return symbol === undefined ? undefined : (socket as unknown as Record<symbol, unknown>)[symbol];
    };
    for (const socket of accepted) {
      assert.equal(socket.allowHalfOpen, true);
      assert.equal(socket.readableHighWaterMark, 12_345);
      assert.equal(noDelay(socket), true, 'TCP_NODELAY set on the accepted socket');
    }
  } finally {
    for (const socket of accepted) socket.destroy();
    closeCopies(copies.flat());
    server.close();
  }
});

