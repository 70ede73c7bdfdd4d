/**
 * Codec tests from bytes alone: every frame type, every split of the stream, every error code,
 * and the shared vectors in test/corpus/frames/ that the Python codec reads too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { FrameDecoder, decodeAll } from '../../src/protocol/decode.js';
import { encodeCredit, encodeFrame, encodeHeader, encodeStrings } from '../../src/protocol/encode.js';
import { decodeStrings } from '../../src/protocol/payloads.js';
import { FLAG_END, FrameType, HEADER_BYTES, MAX_PAYLOAD, type Frame, type FrameTypeName } from '../../src/protocol/frames.js';
import type { ServerError } from '../../src/errors/index.js';

const corpus = join(import.meta.dirname, '..', 'corpus', 'frames');

interface Decoded { frames: { type: number; flags: number; id: number; payload: string }[]; error?: string }

/** Feeds `bytes` in the given piece sizes and collects what comes out. */
function decodeInPieces(bytes: Buffer, pieceSizes: () => number): Decoded {
  const out: Decoded = { frames: [] };
  const decoder = new FrameDecoder(
    (f: Frame) => out.frames.push({ type: f.type, flags: f.flags, id: f.id, payload: f.payload.toString('hex') }),
    (e: ServerError) => { out.error = e.code; },
  );
  for (let offset = 0; offset < bytes.length;) {
    const size = Math.max(1, pieceSizes());
    decoder.push(bytes.subarray(offset, offset + size));
    offset += size;
  }
  return out;
}

function splits(bytes: Buffer): Record<string, Decoded> {
  let seed = 12345;
  const random = (): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return 1 + (seed % 7); };
  return {
    whole: decodeInPieces(bytes, () => bytes.length),
    byteByByte: decodeInPieces(bytes, () => 1),
    randomChunks: decodeInPieces(bytes, random),
  };
}

const sample = Buffer.concat([
  encodeFrame(FrameType.REQUEST, FLAG_END, 1, encodeStrings(['REQUEST_METHOD', 'GET', 'PATH_INFO', '/a'])),
  encodeFrame(FrameType.BODY, 0, 2, Buffer.from('hello')),
  encodeFrame(FrameType.BODY, FLAG_END, 2),
  encodeCredit(2, 65536),
  encodeFrame(FrameType.RESPONSE, FLAG_END, 0xffffffff, Buffer.from([0, 0, 0, 6, ...Buffer.from('200 OKbody')])),
  encodeFrame(FrameType.SHUTDOWN, 0, 0),
]);

test('every split of the stream decodes to the same frames', () => {
  const results = splits(sample);
  assert.equal(results.whole!.frames.length, 6);
  assert.equal(results.whole!.error, undefined);
  assert.deepEqual(results.byteByByte, results.whole);
  assert.deepEqual(results.randomChunks, results.whole);
  assert.equal(results.whole!.frames[4]!.id, 0xffffffff);
  assert.equal(results.whole!.frames[3]!.payload, '00010000');
});

test('header layout: type, flags, reserved zero, id, length, big-endian', () => {
  const header = encodeHeader(FrameType.RESPONSE_BODY, FLAG_END, 0x01020304, 0x0a0b0c);
  assert.equal(header.length, HEADER_BYTES);
  assert.equal(header.toString('hex'), '210100000102030400' + '0a0b0c');
});

test('a reserved field that is not zero is W2N_ERR_PROTO_BAD_HEADER', () => {
  const bytes = encodeFrame(FrameType.PING, 0, 0);
  bytes[3] = 1;
  for (const result of Object.values(splits(bytes))) assert.equal(result.error, 'W2N_ERR_PROTO_BAD_HEADER');
});

test('an unknown type is W2N_ERR_PROTO_UNKNOWN_TYPE', () => {
  const bytes = encodeFrame(FrameType.PING, 0, 0);
  bytes[0] = 0x7f;
  assert.equal(decodeAll(bytes).error?.code, 'W2N_ERR_PROTO_UNKNOWN_TYPE');
});

test('a length beyond MAX_PAYLOAD is W2N_ERR_PROTO_TOO_LARGE, before any payload arrives', () => {
  const header = encodeHeader(FrameType.BODY, 0, 1, 0);
  header.writeUInt32BE(MAX_PAYLOAD + 1, 8);
  const result = decodeInPieces(header, () => 1);
  assert.equal(result.error, 'W2N_ERR_PROTO_TOO_LARGE');
  assert.throws(() => encodeHeader(FrameType.BODY, 0, 1, MAX_PAYLOAD + 1), RangeError);
});

test('after an error nothing more is decoded', () => {
  const bad = encodeFrame(FrameType.PING, 0, 0);
  bad[2] = 9;
  const result = decodeAll(Buffer.concat([encodeFrame(FrameType.PING, 0, 0), bad, encodeFrame(FrameType.PING, 0, 0)]));
  assert.equal(result.frames.length, 1);
  assert.equal(result.error?.code, 'W2N_ERR_PROTO_BAD_HEADER');
});

test('a payload split over many chunks is joined once and intact', () => {
  const payload = Buffer.alloc(3 * 1024 * 1024, 7);
  const bytes = encodeFrame(FrameType.BODY, 0, 5, payload);
  const frames: Frame[] = [];
  const decoder = new FrameDecoder((f) => frames.push(f), (e) => assert.fail(e.message));
  for (let offset = 0; offset < bytes.length; offset += 65536) decoder.push(bytes.subarray(offset, offset + 65536));
  assert.equal(frames.length, 1);
  assert.equal(frames[0]!.payload.length, payload.length);
  assert.ok(frames[0]!.payload.equals(payload));
  assert.equal(decoder.bufferedBytes, 0);
});

test('streamed types: a split payload comes out in pieces, in order, the flags on the last piece only', () => {
  const body = Buffer.from(Array.from({ length: 300 }, (_, i) => i % 251));
  const bytes = Buffer.concat([
    encodeFrame(FrameType.RESPONSE_BODY, 0, 3, body),
    encodeFrame(FrameType.PING, 0, 0),
    encodeFrame(FrameType.RESPONSE_BODY, FLAG_END, 3, body),
    encodeFrame(FrameType.RESPONSE_BODY, FLAG_END, 4),
    encodeFrame(FrameType.RESPONSE, 0, 5, Buffer.from([0, 0, 0, 6, ...Buffer.from('200 OKbody')])),
  ]);
  let seed = 99;
  const sizes: Record<string, () => number> = {
    whole: () => bytes.length, byteByByte: () => 1, random: () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return 1 + (seed % 97); },
  };
  for (const [name, size] of Object.entries(sizes)) {
    const frames: Frame[] = [];
    const decoder = new FrameDecoder((f) => frames.push({ ...f, payload: Buffer.from(f.payload) }), (e) => assert.fail(e.message), MAX_PAYLOAD, new Set([FrameType.RESPONSE_BODY]));
    for (let offset = 0; offset < bytes.length;) {
      const n = size();
      decoder.push(bytes.subarray(offset, offset + n));
      offset += n;
    }
    // joined as the sink sees them: a piece with FLAG_END, a whole body, or a frame of another type closes one
    const joined: { type: number; flags: number; id: number; payload: Buffer }[] = [];
    let open: Frame[] = [];
    for (const f of frames) {
      assert.ok(f.payload.length > 0 || f.type !== FrameType.RESPONSE_BODY || (f.flags & FLAG_END) !== 0, `${name}: no empty piece`);
      open.push(f);
      const total = open.reduce((t, p) => t + p.payload.length, 0);
      if (f.type !== FrameType.RESPONSE_BODY || (f.flags & FLAG_END) !== 0 || total === body.length) {
        for (const p of open.slice(0, -1)) assert.equal(p.flags, 0, `${name}: flags on the last piece only`);
        joined.push({ type: f.type, flags: f.flags, id: f.id, payload: Buffer.concat(open.map((p) => p.payload)) });
        open = [];
      }
    }
    assert.deepEqual(joined.map((f) => [f.type, f.flags, f.id, f.payload.length]), [
      [FrameType.RESPONSE_BODY, 0, 3, 300], [FrameType.PING, 0, 0, 0], [FrameType.RESPONSE_BODY, FLAG_END, 3, 300],
      [FrameType.RESPONSE_BODY, FLAG_END, 4, 0], [FrameType.RESPONSE, 0, 5, 14],
    ], name);
    assert.ok(joined[0]!.payload.equals(body) && joined[2]!.payload.equals(body), `${name}: payloads intact`);
    // a RESPONSE (not a streamed type) is still joined whole
    assert.equal(frames.filter((f) => f.type === FrameType.RESPONSE).length, 1, name);
    if (name === 'byteByByte') assert.ok(frames.length > 600, 'split into pieces, not joined');
    assert.equal(decoder.bufferedBytes, 0, name);
  }
});

test('strings are NUL-separated latin-1', () => {
  const strings = ['PATH_INFO', '/caf\u00e9', 'HTTP_X', ''];
  const bytes = encodeStrings(strings);
  assert.equal(bytes.toString('hex'), Buffer.from('PATH_INFO\0/caf\xe9\0HTTP_X\0', 'latin1').toString('hex'));
  assert.deepEqual(decodeStrings(bytes), strings);
  assert.deepEqual(decodeStrings(Buffer.alloc(0)), []);
});

test('shared vectors in test/corpus/frames decode as their .json says, in every split', () => {
  assert.ok(existsSync(corpus), 'test/corpus/frames exists');
  const vectors = readdirSync(corpus).filter((name) => name.endsWith('.hex'));
  assert.ok(vectors.length >= 10, `at least 10 vectors (found ${vectors.length})`);
  for (const name of vectors) {
    const hex = readFileSync(join(corpus, name), 'utf8').split('\n').map((line) => line.replace(/#.*/, '')).join('').replace(/\s+/g, '');
    const bytes = Buffer.from(hex, 'hex');
    const expected = JSON.parse(readFileSync(join(corpus, name.replace(/\.hex$/, '.json')), 'utf8')) as {
      frames?: { type: FrameTypeName; flags: number; id: number; payloadHex: string }[]; error?: string;
    };
    for (const [how, result] of Object.entries(splits(bytes))) {
      const want = (expected.frames ?? []).map((f) => ({ type: FrameType[f.type], flags: f.flags, id: f.id, payload: f.payloadHex.toLowerCase() }));
      assert.deepEqual(result.frames, want, `${name} (${how}) frames`);
      assert.equal(result.error, expected.error, `${name} (${how}) error`);
    }
  }
});

test('a small payload is copied out of a large buffer it would keep alive; a fair share of it stays a view', () => {
  // The front reads its channel into 256 KiB buffers (pool/channel-reads.ts): a 100-byte answer
  // kept by a client that does not read must not hold one of them.
  const small = Buffer.alloc(100, 1);
  const large = Buffer.alloc(64 * 1024, 2);
  const read = Buffer.alloc(256 * 1024);
  const frames = Buffer.concat([encodeFrame(FrameType.RESPONSE_BODY, 0, 3, small), encodeFrame(FrameType.RESPONSE_BODY, 0, 3, large)]);
  frames.copy(read);
  const got: Frame[] = [];
  const decoder = new FrameDecoder((f) => got.push(f), (e) => assert.fail(e.message), MAX_PAYLOAD, new Set([FrameType.RESPONSE_BODY]));
  decoder.push(read.subarray(0, frames.length));
  assert.equal(got.length, 2);
  assert.ok(got[0]!.payload.equals(small) && got[1]!.payload.equals(large));
  assert.notEqual(got[0]!.payload.buffer, read.buffer, 'the small payload is a copy');
  assert.equal(got[1]!.payload.buffer, read.buffer, 'the large one is a view');
  // Buffers no larger than Node's own reads (64 KiB) keep their views, however small.
  const own = encodeFrame(FrameType.RESPONSE_BODY, 0, 3, small);
  got.length = 0;
  decoder.push(own);
  assert.equal(got[0]!.payload.buffer, own.buffer);
});
