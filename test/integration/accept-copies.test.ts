/**
 * `--accept-batch` (src/front/accept-copies.ts): with N descriptors of a listening socket, one
 * event-loop turn accepts up to N queued connections; Node.js 20 alone accepts one per turn.
 *
 * As in the server, the socket is bound here (src/primary/bound-sockets.ts) and a child process
 * inherits it N times (test/fixtures/processes/accept-turn.ts). How it is seen without timing
 * anything: the child blocks its event loop while 20 clients connect, so they all wait in the
 * kernel's queue; then it counts the connections accepted in the poll phase of one turn.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { bindAll } from '../../src/primary/bound-sockets.js';
import { fixtures } from '../helpers/server.js';

const CLIENTS = 20;

interface TurnReport {
  connected: boolean;
  firstTurn: number;
  total: number;
  descriptors: number;
  backlog: number | null;
  sockets: { allowHalfOpen: boolean; highWaterMark: number; noDelay: unknown }[];
}

async function acceptedInFirstTurn(descriptors: number, backlog = 128, options: object = {}): Promise<TurnReport> {
  const [socket] = await bindAll([{ kind: 'tcp', ip: '127.0.0.1', port: 0, tls: null }]);
  try {
    const child = spawnSync(process.execPath, ['--import', 'tsx', join(fixtures, 'processes', 'accept-turn.ts'), String(descriptors), String(backlog), JSON.stringify(options)], {
      stdio: ['ignore', 'pipe', 'pipe', 'ignore', ...Array<number>(descriptors).fill(socket!.fd)],
      encoding: 'utf8', timeout: 30_000,
    });
    assert.equal(child.status, 0, child.stderr);
    const report = JSON.parse(child.stdout) as TurnReport;
    assert.ok(report.connected, 'every client connected');
    return report;
  } finally {
    socket!.close();
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

test('the copies listen with the backlog we asked for, not Node\'s default of 511', async () => {
  const { backlog } = await acceptedInFirstTurn(3, 77);
  if (backlog === null) return; // no ss here: nothing to read the backlog with
  assert.equal(backlog, 77);
});

test('a copy accepts sockets as the original would: half-open allowed, no Nagle delay, the same high-water mark', async () => {
  // http.Server's options; a bare net.Server (what a copy is) has none of them.
  const { sockets } = await acceptedInFirstTurn(8, 128, { allowHalfOpen: true, noDelay: true, highWaterMark: 12_345 });
  assert.equal(sockets.length, CLIENTS);
  for (const socket of sockets) {
    assert.equal(socket.allowHalfOpen, true);
    assert.equal(socket.highWaterMark, 12_345);
    assert.equal(socket.noDelay, true, 'TCP_NODELAY set on the accepted socket');
  }
});
