/**
 * The channel's large reads (src/pool/channel-reads.ts) on a real child's fd 3: every byte
 * arrives, in order; a burst arrives in reads larger than Node's own 64 KiB; a small read is a
 * copy, a large one is lent, and its buffer is read into again unless a piece of it is held.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { Duplex } from 'node:stream';
import test from 'node:test';
import { HAND_OVER_BYTES, READ_BYTES, largeReadSocket, type ReadLease } from '../../src/pool/channel-reads.js';

// Waits for one byte from the front, then writes 16 bytes; after the next byte, 128 KiB (which
// the socket holds: its buffer is 208 KiB), says so on stdout, then the rest of 8 MiB.
const CHILD = `
const fs = require('node:fs');
const small = Buffer.from('0123456789abcdef');
const big = Buffer.alloc(8 * 1024 * 1024);
for (let i = 0; i < big.length; i += 1) big[i] = i % 251;
const one = Buffer.alloc(1);
fs.readSync(3, one); fs.writeSync(3, small);
fs.readSync(3, one);
for (let off = 0; off < 128 * 1024;) off += fs.writeSync(3, big, off, 128 * 1024 - off);
fs.writeSync(1, 'queued');
for (let off = 128 * 1024; off < big.length;) off += fs.writeSync(3, big, off);
fs.readSync(3, one);
`;

test('large reads: all bytes in order, bursts in reads over 64 KiB, small reads copied', async (t) => {
  const child = spawn(process.execPath, ['-e', CHILD], { stdio: ['ignore', 'pipe', 'inherit', 'pipe'] });
  // A failed assertion must not leave the child waiting on its pipe (the test file would never end).
  t.after(() => { child.kill(); });
  const pipe = child.stdio[3] as Duplex;
  const chunks: Buffer[] = [];
  const leases: (ReadLease | null)[] = [];
  let total = 0;
  let onBytes = (): void => undefined;
  let releaseFirst: (() => void) | null = null;
  const socket = largeReadSocket(pipe, (chunk, lease) => {
    // A lent chunk is read over once this returns: kept as a copy, and the first one held.
    chunks.push(lease === null ? chunk : Buffer.from(chunk));
    if (lease !== null) assert.equal(chunk.buffer, lease.memory);
    if (lease !== null && releaseFirst === null) releaseFirst = lease.hold();
    leases.push(lease);
    total += chunk.length;
    onBytes();
  });
  assert.ok(socket !== null, 'the pipe handle can be moved');
  const until = (bytes: number): Promise<void> => new Promise((resolve) => {
    onBytes = () => { if (total >= bytes) resolve(); };
    onBytes();
  });
  socket.write('a');
  await until(16);
  assert.equal(chunks.length, 1);
  assert.equal(chunks[0]!.toString(), '0123456789abcdef');
  assert.equal(leases[0], null, 'a small read is a copy, not lent');
  assert.ok(chunks[0]!.buffer.byteLength < READ_BYTES);
  // Not read until the child has queued 128 KiB: the first read then takes more than Node's 64 KiB.
  socket.pause();
  const queued = new Promise((resolve) => child.stdout!.once('data', resolve));
  socket.write('b');
  await queued;
  socket.resume();
  await until(16 + 8 * 1024 * 1024);
  const big = Buffer.concat(chunks.slice(1));
  assert.equal(big.length, 8 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4099) assert.equal(big[i], i % 251, `byte ${i}`);
  assert.ok(chunks[1]!.length >= 128 * 1024, `the first read took what was queued: ${chunks[1]!.length} bytes`);
  for (const [i, c] of chunks.entries()) assert.equal(leases[i] !== null, c.length >= HAND_OVER_BYTES, `read ${i} of ${c.length} bytes: lent from ${HAND_OVER_BYTES}`);
  // The first lent buffer is held (never read over); every later lent read shares one other buffer.
  const memories = new Set(leases.filter((l) => l !== null).map((l) => l.memory));
  assert.equal(memories.size, 2, 'one held buffer, one read into again and again');
  releaseFirst!();
  const exited = new Promise((resolve) => child.once('exit', resolve));
  socket.end('c');
  assert.equal(await exited, 0);
  socket.destroy();
});
