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
import { createServer, type Server, type ServerOpts, type Socket } from 'node:net';
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

interface Copied {
  port: number;
  /** Sockets the original server was handed, whichever descriptor accepted them. */
  accepted: Socket[];
  /** Descriptors of the listening socket: the original's and its copies'. */
  descriptors: number;
}

/** A server on 127.0.0.1 with `batch - 1` copies (backlog `backlog`) around `body`; all closed after. */
async function withCopies<T>(options: ServerOpts, batch: number, backlog: number, body: (copied: Copied) => Promise<T>): Promise<T> {
  const server: Server = createServer(options);
  const accepted: Socket[] = [];
  server.on('connection', (socket: Socket) => { accepted.push(socket); socket.on('error', () => {}); });
  server.listen({ port: 0, host: '127.0.0.1', backlog });
  await once(server, 'listening');
  const { copies, problem } = await addAcceptCopies([server], batch, backlog);
  assert.equal(problem, null);
  try {
    const { port } = server.address() as { port: number };
    return await body({ port, accepted, descriptors: 1 + copies[0]!.length });
  } finally {
    for (const socket of accepted) socket.destroy();
    closeCopies(copies.flat());
    server.close();
  }
}

/** Waits (at most 5 s) until every client's connection reached the server. */
async function allAccepted(accepted: readonly Socket[]): Promise<void> {
  const deadline = Date.now() + 5000;
  while (accepted.length < CLIENTS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}

function acceptedInFirstTurn(batch: number): Promise<{ firstTurn: number; total: number; descriptors: number }> {
  return withCopies({}, batch, 128, async ({ port, accepted, descriptors }) => {
    connectAllWhileBlocked(port); // blocks this event loop: the connections queue in the kernel
    // The first immediate ends the turn we are in (its poll phase may be over already); the
    // second comes right after the next turn's poll phase, where the queued connects are seen.
    const firstTurn = await new Promise<number>((resolve) => setImmediate(() => {
      const before = accepted.length;
      setImmediate(() => resolve(accepted.length - before));
    }));
    await allAccepted(accepted);
    return { firstTurn, total: accepted.length, descriptors };
  });
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
  await withCopies({}, 3, 77, async ({ port }) => {
    const ss = spawnSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' });
    if (ss.error) return; // no ss here: nothing to read the backlog with
    const backlog = Number(ss.stdout.trim().split(/\s+/)[2]);
    assert.equal(backlog, 77, ss.stdout);
  });
});

test('a copy accepts sockets as the original would: half-open allowed, no Nagle delay, the same high-water mark', async () => {
  // http.Server's options; a bare net.Server (what a copy is) has none of them.
  await withCopies({ allowHalfOpen: true, noDelay: true, highWaterMark: 12_345 }, 8, 128, async ({ port, accepted }) => {
    connectAllWhileBlocked(port); // 20 connects: most are accepted by the copies
    await allAccepted(accepted);
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
  });
});
