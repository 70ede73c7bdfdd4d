/**
 * spoolBody on real streams and a real folder: memory below the threshold, an unlinked 0600 temp
 * file above it, the limit, an abort and a folder it cannot write, each releasing what it held.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { once } from 'node:events';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { probeSpoolDir, spoolBody, type SpooledBody } from '../../src/front/body-spool.js';

const dir = mkdtempSync(join(tmpdir(), 'w2n-spool-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const limits = { memoryBytes: 64 * 1024, maxBytes: 4 * 1024 * 1024, dir };
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** This process's descriptors that point into the spool folder. */
function openSpoolFiles(): string[] {
  return readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      return target.startsWith(`${dir}/`) ? [`${fd} ${target}`] : [];
    } catch {
      return [];
    }
  });
}

/** Closing a FileHandle is asynchronous: poll until nothing of the spool folder is open. */
async function noSpoolFileOpen(): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (openSpoolFiles().length > 0) {
    if (Date.now() > deadline) assert.deepEqual(openSpoolFiles(), []);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function readAll(body: SpooledBody): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body.stream()) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function source(data: Buffer, pieceBytes: number): Readable {
  const pieces: Buffer[] = [];
  for (let i = 0; i < data.length; i += pieceBytes) pieces.push(data.subarray(i, i + pieceBytes));
  return Readable.from(pieces, { objectMode: false });
}

test('below the threshold: kept in memory, returned whole', async () => {
  const data = randomBytes(50_000);
  const outcome = await spoolBody(source(data, 7_000), limits);
  assert.equal(outcome.kind, 'complete');
  if (outcome.kind !== 'complete') return;
  assert.equal(outcome.body.size, data.length);
  assert.equal(outcome.body.isOnDisk, false);
  assert.equal(sha256(await readAll(outcome.body)), sha256(data));
});

test('above the threshold: an unlinked 0600 file, read back whole, closed at the end', async () => {
  const data = randomBytes(3 * 1024 * 1024 + 17);
  const outcome = await spoolBody(source(data, 64 * 1024), limits);
  assert.equal(outcome.kind, 'complete');
  if (outcome.kind !== 'complete') return;
  assert.equal(outcome.body.isOnDisk, true);
  assert.deepEqual(readdirSync(dir), []);
  const open = openSpoolFiles();
  assert.equal(open.length, 1);
  assert.match(open[0]!, / \(deleted\)$/);
  const mode = statSync(`/proc/self/fd/${open[0]!.split(' ')[0]}`).mode & 0o777;
  assert.equal(mode, 0o600);
  assert.equal(sha256(await readAll(outcome.body)), sha256(data));
  outcome.body.dispose();
  await noSpoolFileOpen();
});

test('a body of many MiB in pieces that straddle the spool\'s reused 256 KiB blocks: the file holds exactly its bytes', async () => {
  const data = randomBytes(5 * 1024 * 1024 + 333);
  const outcome = await spoolBody(source(data, 100_003), { ...limits, maxBytes: 8 * 1024 * 1024 });
  assert.equal(outcome.kind, 'complete');
  if (outcome.kind !== 'complete') return;
  assert.equal(outcome.body.isOnDisk, true);
  assert.equal(outcome.body.size, data.length);
  assert.equal(sha256(await readAll(outcome.body)), sha256(data));
  outcome.body.dispose();
  await noSpoolFileOpen();
});

test('one-byte chunks are gathered into blocks, not an object per byte', async () => {
  const data = randomBytes(200_000);
  const outcome = await spoolBody(source(data, 1), limits);
  assert.equal(outcome.kind, 'complete');
  if (outcome.kind !== 'complete') return;
  const chunks: Buffer[] = [];
  for await (const chunk of outcome.body.stream()) chunks.push(chunk as Buffer);
  assert.equal(sha256(Buffer.concat(chunks)), sha256(data));
  assert.ok(chunks.length < 100, `${chunks.length} chunks`);
});

test('disposed without being read: the descriptor is closed', async () => {
  const outcome = await spoolBody(source(randomBytes(1024 * 1024), 64 * 1024), limits);
  assert.equal(outcome.kind, 'complete');
  if (outcome.kind !== 'complete') return;
  assert.equal(openSpoolFiles().length, 1);
  outcome.body.dispose();
  await noSpoolFileOpen();
});

test('lent to the worker (retain): dispose() leaves the descriptor open until the last holder lets go', async () => {
  const data = randomBytes(200_000);
  const outcome = await spoolBody(source(data, 16_384), limits);
  assert.equal(outcome.kind, 'complete');
  if (outcome.kind !== 'complete') return;
  const body = outcome.body;
  assert.equal(body.isOnDisk, true);
  // What the worker checks it opened: the same device and inode, and the body's length.
  const seen = statSync(`/proc/self/fd/${body.fd}`, { bigint: true });
  assert.deepEqual([seen.dev, seen.ino, Number(seen.size)], [body.dev, body.ino, data.length]);
  body.stream(); // made before dispatch, never read when the worker reads the file itself
  const releaseOne = body.retain();
  const releaseTwo = body.retain();
  body.dispose();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(openSpoolFiles().length, 1, 'still held');
  releaseOne();
  releaseOne(); // twice is once
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(openSpoolFiles().length, 1, 'one holder left');
  releaseTwo();
  await noSpoolFileOpen();
});

test('past maxBytes: too-large as it crosses, the file released, the source left paused', async () => {
  const input = new PassThrough();
  const spooling = spoolBody(input, limits);
  const piece = Buffer.alloc(256 * 1024, 1);
  let settled = false;
  const done = spooling.then(() => { settled = true; });
  for (let written = 0; !settled && written < 4 * limits.maxBytes; written += piece.length) {
    if (!input.write(piece)) await Promise.race([once(input, 'drain'), done]);
  }
  const outcome = await spooling;
  assert.equal(outcome.kind, 'too-large');
  // Refused at the chunk that crossed the limit, not later.
  if (outcome.kind === 'too-large') assert.ok(outcome.receivedBytes > limits.maxBytes && outcome.receivedBytes <= limits.maxBytes + piece.length);
  assert.equal(input.isPaused(), true);
  await noSpoolFileOpen();
});

test('the source is destroyed mid-way: aborted, nothing left open', async () => {
  const input = new PassThrough();
  const spooling = spoolBody(input, limits);
  input.write(Buffer.alloc(512 * 1024, 2));
  while (openSpoolFiles().length === 0) await new Promise((r) => setTimeout(r, 10)); // it reached the file
  input.destroy();
  assert.deepEqual(await spooling, { kind: 'aborted' });
  await noSpoolFileOpen();
});

test('a folder that is not there: failed with the reason; probeSpoolDir says why too', async () => {
  const missing = join(dir, 'missing');
  const outcome = await spoolBody(source(randomBytes(200_000), 64 * 1024), { ...limits, dir: missing });
  assert.equal(outcome.kind, 'failed');
  if (outcome.kind === 'failed') assert.match(outcome.reason, /ENOENT/);
  assert.match(probeSpoolDir(missing) ?? '', /ENOENT/);
  assert.equal(probeSpoolDir(dir), null);
  assert.deepEqual(readdirSync(dir), []);
});
