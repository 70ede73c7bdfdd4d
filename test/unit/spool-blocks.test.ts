/**
 * SpoolBlocks (the bytes of a spooled body waiting for the disk): copied out of the pieces
 * pushed, in order across block boundaries, blocks reused by the same spool once written, and
 * given back to a bounded shared free list when the spool has caught up or ends.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { SPOOL_BLOCK_BYTES, SpoolBlocks, freeSpoolBlocks } from '../../src/front/spool-blocks.js';

test('pieces straddling blocks come out whole and in order, copied (the caller may reuse its buffer)', () => {
  const blocks = new SpoolBlocks();
  const data = randomBytes(3 * SPOOL_BLOCK_BYTES + 12_345);
  const piece = Buffer.alloc(100_003);
  for (let at = 0; at < data.length; at += piece.length) {
    const n = data.copy(piece, 0, at);
    blocks.push(piece.subarray(0, n));
    piece.fill(0); // a source that reuses its buffer must not change what was pushed
  }
  assert.equal(blocks.bytes, data.length);
  const batch = blocks.take();
  assert.equal(blocks.bytes, 0);
  assert.deepEqual(Buffer.concat(batch.pieces), data);
  assert.equal(batch.pieces.length, 4);
  assert.deepEqual(blocks.take().pieces, []);
});

test('a written batch is reused by the same spool; releaseSpare gives it to the shared list, bounded', () => {
  const blocks = new SpoolBlocks();
  blocks.push(randomBytes(2 * SPOOL_BLOCK_BYTES));
  const first = blocks.take();
  const firstBuffers = new Set(first.pieces.map((p) => p.buffer));
  first.recycle();
  first.recycle(); // twice: still once
  blocks.push(randomBytes(2 * SPOOL_BLOCK_BYTES));
  const second = blocks.take();
  assert.deepEqual(new Set(second.pieces.map((p) => p.buffer)), firstBuffers);
  second.recycle();

  const before = freeSpoolBlocks();
  blocks.releaseSpare();
  assert.equal(freeSpoolBlocks(), Math.min(before + 2, 16));
  // A spool with many spare blocks: the shared list keeps at most 16 (4 MiB).
  const big = new SpoolBlocks();
  big.push(Buffer.alloc(40 * SPOOL_BLOCK_BYTES));
  big.take().recycle();
  big.releaseSpare();
  assert.equal(freeSpoolBlocks(), 16);
});

test('discard drops what is pending and lets go of the blocks', () => {
  const blocks = new SpoolBlocks();
  blocks.push(randomBytes(SPOOL_BLOCK_BYTES + 1));
  blocks.discard();
  assert.equal(blocks.bytes, 0);
  assert.deepEqual(blocks.take().pieces, []);
  assert.ok(freeSpoolBlocks() <= 16);
});
