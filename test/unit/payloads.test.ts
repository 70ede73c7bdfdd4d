/**
 * Payload decoders (src/protocol/payloads.ts): every payload a worker may send, cut short, too
 * long, or not what its layout says, is a typed protocol error, never an exception.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameType } from '../../src/protocol/frames.js';
import {
  MAX_ERROR_MESSAGE_CHARS, MAX_ERROR_TRACEBACK_CHARS, decodeCredit, decodeError, decodeReady, decodeResponse, decodeSendfile,
} from '../../src/protocol/payloads.js';

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));
const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };

function sendfile(fd: number, offset: bigint, length: bigint): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt32BE(fd, 0);
  b.writeBigUInt64BE(offset, 4);
  b.writeBigUInt64BE(length, 12);
  return b;
}

function refused(result: { ok: boolean; error?: { code: string } }): void {
  assert.equal(result.ok, false);
  assert.equal(result.error?.code, 'W2N_ERR_PROTO_BAD_PAYLOAD');
}

test('RESPONSE: head and inline body; shorter than the head length or than 4 bytes is refused', () => {
  const head = Buffer.from('200 OK\0a\0b', 'latin1');
  const good = decodeResponse(FrameType.RESPONSE, Buffer.concat([u32(head.length), head, Buffer.from('body')]));
  assert.ok(good.ok);
  assert.equal(good.value.head.toString('latin1'), '200 OK\0a\0b');
  assert.equal(good.value.body.toString(), 'body');
  for (const payload of [Buffer.alloc(0), Buffer.from([0, 0, 0]), Buffer.concat([u32(100), head])]) {
    refused(decodeResponse(FrameType.RESPONSE, payload));
  }
});

test('SENDFILE: exactly 20 bytes; offsets and lengths past 2^53 refused', () => {
  const good = decodeSendfile(FrameType.SENDFILE, sendfile(7, 10n, 20n));
  assert.deepEqual(good, { ok: true, value: { fd: 7, offset: 10, length: 20 } });
  refused(decodeSendfile(FrameType.SENDFILE, Buffer.alloc(4)));
  refused(decodeSendfile(FrameType.SENDFILE, Buffer.alloc(21)));
  refused(decodeSendfile(FrameType.SENDFILE, sendfile(7, 2n ** 63n, 1n)));
  refused(decodeSendfile(FrameType.SENDFILE, sendfile(7, 2n ** 52n, 2n ** 52n)));
});

test('CREDIT: exactly 4 bytes', () => {
  assert.deepEqual(decodeCredit(FrameType.CREDIT, u32(65536)), { ok: true, value: 65536 });
  for (const size of [0, 1, 3, 5, 8]) refused(decodeCredit(FrameType.CREDIT, Buffer.alloc(size)));
});

test('ERROR: a JSON object with a string code; message and traceback cut to their limits', () => {
  const good = decodeError(FrameType.ERROR, json({ code: 'W2N_ERR_APP_EXCEPTION', message: 'm', traceback: 't' }));
  assert.deepEqual(good, { ok: true, value: { code: 'W2N_ERR_APP_EXCEPTION', message: 'm', traceback: 't' } });
  for (const payload of [Buffer.from('{not json'), json(null), json([]), json('x'), json(3), json({}), json({ code: 1 }),
    json({ code: 'X', message: {} }), json({ code: 'X', traceback: 5 }), Buffer.alloc(0), Buffer.from([0xff, 0xfe])]) {
    refused(decodeError(FrameType.ERROR, payload));
  }
  const long = decodeError(FrameType.ERROR, json({ code: 'X', message: 'm'.repeat(100_000), traceback: 't'.repeat(MAX_ERROR_TRACEBACK_CHARS + 10) }));
  assert.ok(long.ok);
  assert.ok(long.value.message.length < MAX_ERROR_MESSAGE_CHARS + 100);
  assert.equal(long.value.traceback?.length, MAX_ERROR_TRACEBACK_CHARS);
});

test('READY: the fields the front uses, typed; anything else refused', () => {
  const info = { protocol: 1, pid: 42, python: '3.11.7', workerClass: 'thread', capacity: 8 };
  assert.deepEqual(decodeReady(FrameType.READY, json(info)), { ok: true, value: info });
  for (const bad of [null, {}, { ...info, capacity: 0 }, { ...info, capacity: '8' }, { ...info, python: 3 }, { ...info, protocol: '1' }]) {
    refused(decodeReady(FrameType.READY, json(bad)));
  }
});
