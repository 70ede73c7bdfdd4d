/**
 * Payload decoders (src/protocol/payloads.ts): every payload a worker may send, cut short, too
 * long, or not what its layout says, is a typed protocol error, never an exception.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorTable, workerError, type ErrorSpec } from '../../src/errors/index.js';
import { encodeBodyFile, encodeFileOpened, encodeRequest, encodeWsClose, encodeWsMessageHeader } from '../../src/protocol/encode.js';
import { FrameType, type FrameTypeName } from '../../src/protocol/frames.js';
import {
  MAX_ERROR_MESSAGE_CHARS, MAX_ERROR_TRACEBACK_CHARS, decodeCredit, decodeError, decodeFileOpened, decodeReady, decodeResponse, decodeSendfile, decodeStrings,
  decodeWsAccept, decodeWsClose, decodePublish,
  type Decoded,
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
  assert.deepEqual(good.value.head, { statusCode: 200, reason: 'OK', headers: ['a', 'b'] });
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

test('RESPONSE: an unreadable status line or a name without its value is a null head, not a channel error', () => {
  for (const text of ['OK', '20 OK', '200 OK\0lonely', '']) {
    const head = Buffer.from(text, 'latin1');
    const decoded = decodeResponse(FrameType.RESPONSE, Buffer.concat([u32(head.length), head]));
    assert.ok(decoded.ok, JSON.stringify(text));
    assert.equal(decoded.value.head, null, JSON.stringify(text));
  }
  const bare = decodeResponse(FrameType.RESPONSE, Buffer.concat([u32(3), Buffer.from('204')]));
  assert.deepEqual(bare.ok && bare.value.head, { statusCode: 204, reason: '', headers: [] });
});

/** What a vector's `decoded` holds for a frame of this type (test/corpus/frames/README.md). */
function decodedOf(type: FrameTypeName, payload: Buffer): unknown {
  const code = FrameType[type];
  const shape = <T>(d: Decoded<T>, f: (v: T) => unknown): unknown => (d.ok ? f(d.value) : { error: d.error.code });
  switch (type) {
    case 'REQUEST': return { strings: decodeStrings(payload) };
    case 'RESPONSE': return shape(decodeResponse(code, payload), ({ head, body }) => ({ ...head, bodyHex: body.toString('hex') }));
    case 'SENDFILE': return shape(decodeSendfile(code, payload), (value) => value);
    case 'CREDIT': return shape(decodeCredit(code, payload), (bytes) => ({ bytes }));
    case 'ERROR': return shape(decodeError(code, payload), (value) => value);
    case 'READY': return shape(decodeReady(code, payload), (value) => value);
    case 'WS_ACCEPT': return shape(decodeWsAccept(code, payload), (protocol) => ({ protocol }));
    case 'WS_CLOSE': return shape(decodeWsClose(code, payload), (value) => value);
    case 'PUBLISH': return shape(decodePublish(code, payload), (value) => value);
    case 'FILE_OPENED': return shape(decodeFileOpened(code, payload), (opened) => ({ opened }));
    default: return undefined;
  }
}

test('shared vectors: every payload with a layout decodes to the fields its .json holds', () => {
  const corpus = join(import.meta.dirname, '..', 'corpus', 'frames');
  const seen = new Set<string>();
  let refusals = 0;
  for (const name of readdirSync(corpus).filter((file) => file.endsWith('.json'))) {
    const expected = JSON.parse(readFileSync(join(corpus, name), 'utf8')) as {
      frames?: { type: FrameTypeName; payloadHex: string; decoded?: unknown }[];
    };
    for (const [index, frame] of (expected.frames ?? []).entries()) {
      const actual = decodedOf(frame.type, Buffer.from(frame.payloadHex, 'hex'));
      assert.deepEqual(actual, frame.decoded, `${name} frame ${index} (${frame.type})`);
      if (actual === undefined) continue;
      seen.add(frame.type);
      if (typeof actual === 'object' && actual !== null && 'error' in actual) refusals += 1;
    }
  }
  assert.deepEqual([...seen].sort(), ['CREDIT', 'ERROR', 'FILE_OPENED', 'PUBLISH', 'READY', 'REQUEST', 'RESPONSE', 'SENDFILE', 'WS_ACCEPT', 'WS_CLOSE']);
  assert.ok(refusals >= 5, `a refused payload for each layout (found ${refusals})`);
});

test('FILE_OPENED is encoded as the shared vector has it', () => {
  assert.equal(encodeFileOpened(12, true).toString('hex'), '230000000000000c0000000101');
  assert.equal(encodeFileOpened(12, false).subarray(-1)[0], 0);
});

test('BODY_FILE is encoded as the shared vector has it (the worker decodes it: test_protocol.py)', () => {
  const frame = encodeBodyFile(9, { pid: 4242, fd: 23, length: 2 ** 32 + 5, dev: 0x803n, ino: 2n ** 40n + 7n });
  assert.equal(frame.toString('hex'), '14000000000000090000002000001092000000170000000100000005000000000000080300000100' + '00000007');
});

test('ERROR codes are read through the error table: on a request, at start, and an unknown code', () => {
  const cases: [on: 'request' | 'start', code: string, message: string, want: string, text: RegExp][] = [
    ['request', 'W2N_ERR_APP_EXCEPTION', 'ZeroDivisionError: x', 'W2N_ERR_APP_EXCEPTION', /raised ZeroDivisionError: x/],
    ['request', 'W2N_ERR_APP_EXCEPTION', '', 'W2N_ERR_APP_EXCEPTION', /raised an exception/],
    ['request', 'W2N_ERR_APP_BAD_RESPONSE', 'header X: bad', 'W2N_ERR_APP_BAD_RESPONSE', /WSGI rules: header X: bad/],
    ['request', 'W2N_ERR_NOT_READY', 'shutting down', 'W2N_ERR_NOT_READY', /^no worker is ready$/],
    ['request', 'W2N_ERR_FORGED', 'Boom', 'W2N_ERR_APP_EXCEPTION', /raised Boom/],
    ['request', 'W2N_ERR_CONFIG_BAD_VALUE', 'Boom', 'W2N_ERR_APP_EXCEPTION', /raised Boom/],
    ['request', 'W2N_ERR_APP_IMPORT', 'Boom', 'W2N_ERR_APP_EXCEPTION', /raised Boom/],
    ['request', 'toString', 'Boom', 'W2N_ERR_APP_EXCEPTION', /raised Boom/],
    ['start', 'W2N_ERR_APP_IMPORT', 'No module named x', 'W2N_ERR_APP_IMPORT', /loaded: No module named x/],
    ['start', 'W2N_ERR_PROTO_VERSION', 'worker speaks 2', 'W2N_ERR_APP_IMPORT', /loaded: worker speaks 2/],
    ['start', 'W2N_ERR_APP_EXCEPTION', '', 'W2N_ERR_APP_IMPORT', /loaded: unknown error/],
  ];
  for (const [on, code, message, want, text] of cases) {
    const error = workerError(on, code, message);
    assert.equal(error.code, want, `${on} ${code}`);
    assert.match(error.message, text, `${on} ${code}`);
  }
  for (const [code, spec] of Object.entries(errorTable)) {
    const rule = (spec as ErrorSpec).fromWorker;
    if (rule?.detail !== undefined) assert.match(spec.message, new RegExp(`\\{${rule.detail}\\}`), `${code}: its worker detail is in its message`);
  }
});

test('WebSocket frames are encoded as the shared vector (websocket.hex) has them', () => {
  const vector = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'corpus', 'frames', 'websocket.json'), 'utf8')) as {
    frames: { type: FrameTypeName; flags: number; id: number; payloadHex: string }[];
  };
  const wire = (frame: { type: FrameTypeName; flags: number; id: number; payloadHex: string }): string => {
    const length = Buffer.from(frame.payloadHex, 'hex').length;
    return `${FrameType[frame.type].toString(16).padStart(2, '0')}${frame.flags.toString(16).padStart(2, '0')}0000${frame.id.toString(16).padStart(8, '0')}${length.toString(16).padStart(8, '0')}${frame.payloadHex}`;
  };
  const [request, , text, , binary, close] = vector.frames;
  assert.equal(encodeRequest(6, Buffer.from(request!.payloadHex, 'hex'), false, true).toString('hex'), wire(request!));
  assert.equal(encodeWsMessageHeader(6, 6, false).toString('hex') + text!.payloadHex, wire(text!));
  assert.equal(encodeWsMessageHeader(6, 2, true).toString('hex') + binary!.payloadHex, wire(binary!));
  assert.equal(encodeWsClose(6, 4000, 'bye').toString('hex'), wire(close!));
  // A reason longer than RFC 6455 allows is cut to 123 bytes, never mid-character.
  const long = encodeWsClose(1, 1000, 'é'.repeat(100));
  assert.equal(long.readUInt32BE(8), 2 + 122);
  assert.equal(decodeWsClose(FrameType.WS_CLOSE, long.subarray(12)).ok, true);
});
