/**
 * BODY_FILE (src/pool/channel.ts, docs/protocol.md): a body the front holds whole in a file is
 * offered to the worker by descriptor; the front holds the descriptor until the worker's
 * FILE_OPENED or its last word (or its death), and streams the body as BODY frames when the
 * worker answers 0. A FILE_OPENED nobody asked for, or one that breaks its layout, is a worker
 * that breaks the protocol. The socket is an in-memory Duplex whose bytes are decoded back into
 * frames; the worker's frames are pushed into it by hand.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Duplex, Readable } from 'node:stream';
import { ServerError } from '../../src/errors/index.js';
import { Channel } from '../../src/pool/channel.js';
import { Exchange, type AppFailure, type BodyFile } from '../../src/pool/exchange.js';
import { encodeFileOpened, encodeFrame, encodeStrings } from '../../src/protocol/encode.js';
import { FrameDecoder } from '../../src/protocol/decode.js';
import { FLAG_END, FrameType, type Frame } from '../../src/protocol/frames.js';

const BODY = Buffer.from('a body of forty bytes, spooled to a file');

/** A BodyFile that counts its holders. */
function fakeFile(): BodyFile & { holders: number } {
  const file = {
    fd: 42, size: BODY.length, dev: 7n, ino: 99n, holders: 0,
    retain(): () => void {
      file.holders += 1;
      let isHeld = true;
      return () => {
        if (isHeld) file.holders -= 1;
        isHeld = false;
      };
    },
  };
  return file;
}

function setup() {
  const frames: Frame[] = [];
  const decoder = new FrameDecoder((frame) => frames.push({ ...frame, payload: Buffer.from(frame.payload) }), (error) => assert.fail(error.message));
  const socket = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, done) {
      decoder.push(chunk);
      done();
    },
  });
  const protocolErrors: ServerError[] = [];
  const channel = new Channel(socket, { requestWindowBytes: 1 << 16, responseWindowBytes: 1 << 16 },
    { onControl() {}, onExchangeEnded() {}, onProtocolError: (error) => protocolErrors.push(error) });
  const start = (file: BodyFile): { exchange: Exchange; failures: AppFailure[] } => {
    const failures: AppFailure[] = [];
    const exchange = new Exchange(encodeStrings(['REQUEST_METHOD', 'POST', 'PATH_INFO', '/', 'CONTENT_LENGTH', String(BODY.length)]),
      Readable.from([BODY]), { head() {}, body() {}, sendFile() {}, fail: (failure) => failures.push(failure) },
      { method: 'POST', path: '/' }, file);
    channel.run(exchange);
    return { exchange, failures };
  };
  /** What the worker says, as bytes on its end of the socket. */
  const fromWorker = (bytes: Buffer): void => {
    socket.push(bytes);
  };
  /** The channel's writes (and the body stream's reads) of this turn, once it ends. */
  const sent = async (): Promise<Frame[]> => {
    for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
    return frames;
  };
  return { channel, start, fromWorker, sent, protocolErrors };
}

test('a spooled body is offered by descriptor; FILE_OPENED 1: nothing streamed, the hold released', async () => {
  const { start, fromWorker, sent, protocolErrors } = setup();
  const file = fakeFile();
  const { exchange } = start(file);
  const offered = await sent();
  assert.deepEqual(offered.map((f) => f.type), [FrameType.REQUEST, FrameType.BODY_FILE]);
  assert.equal(offered[0]!.flags & FLAG_END, 0, 'REQUEST without END: a body comes');
  const payload = offered[1]!.payload;
  assert.deepEqual([payload.readUInt32BE(0), payload.readUInt32BE(4), payload.readBigUInt64BE(8), payload.readBigUInt64BE(16), payload.readBigUInt64BE(24)],
    [process.pid, 42, BigInt(BODY.length), 7n, 99n]);
  assert.equal(file.holders, 1, 'held while the worker may be opening it');
  fromWorker(encodeFileOpened(exchange.id, true));
  const after = await sent();
  assert.equal(file.holders, 0);
  assert.deepEqual(after.map((f) => f.type), [FrameType.REQUEST, FrameType.BODY_FILE], 'no BODY frame');
  assert.deepEqual(protocolErrors, []);
});

test('FILE_OPENED 0: the body is streamed as BODY frames, as without a file', async () => {
  const { start, fromWorker, sent, protocolErrors } = setup();
  const file = fakeFile();
  const { exchange } = start(file);
  await sent();
  fromWorker(encodeFileOpened(exchange.id, false));
  const frames = await sent();
  assert.equal(file.holders, 0);
  const body = frames.filter((f) => f.type === FrameType.BODY);
  assert.deepEqual(Buffer.concat(body.map((f) => f.payload)), BODY);
  assert.equal(body.at(-1)!.flags & FLAG_END, FLAG_END);
  assert.deepEqual(protocolErrors, []);
});

test('the worker answers without ever opening it: its last word releases the hold', async () => {
  const { start, fromWorker, sent } = setup();
  const file = fakeFile();
  const { exchange } = start(file);
  await sent();
  fromWorker(encodeFrame(FrameType.RESPONSE, FLAG_END, exchange.id, Buffer.from([0, 0, 0, 6, ...Buffer.from('200 OK')])));
  await sent();
  assert.equal(file.holders, 0);
});

test('a cancelled request keeps the hold until the worker\'s last word, and is never streamed', async () => {
  const { start, fromWorker, sent } = setup();
  const file = fakeFile();
  const { exchange } = start(file);
  await sent();
  exchange.cancel();
  await sent();
  assert.equal(file.holders, 1, 'the worker may still be opening it');
  fromWorker(encodeFileOpened(exchange.id, false));
  const frames = await sent();
  assert.equal(file.holders, 0);
  assert.equal(frames.filter((f) => f.type === FrameType.BODY).length, 0, 'nobody wants the body any more');
  fromWorker(encodeFrame(FrameType.ERROR, 0, exchange.id, Buffer.from('{"code":"W2N_ERR_REQUEST_CANCELLED","message":"x"}')));
  await sent();
  assert.equal(exchange.state, 'done');
});

test('the worker dies before it answers: closing the channel releases the hold', async () => {
  const { channel, start, sent } = setup();
  const file = fakeFile();
  const { failures } = start(file);
  await sent();
  channel.close(() => ({ error: new ServerError('W2N_ERR_WORKER_DIED', { workerId: 1, pid: 1, reason: 'killed' }) }));
  assert.equal(file.holders, 0);
  assert.equal(failures[0]?.error.code, 'W2N_ERR_WORKER_DIED');
});

test('FILE_OPENED not asked for, twice, or not one byte 0 or 1: the worker broke the protocol', async () => {
  for (const [name, answer] of [
    ['twice', (id: number) => [encodeFileOpened(id, true), encodeFileOpened(id, true)]],
    ['answer 2', (id: number) => [encodeFrame(FrameType.FILE_OPENED, 0, id, Buffer.from([2]))]],
    ['two bytes', (id: number) => [encodeFrame(FrameType.FILE_OPENED, 0, id, Buffer.from([1, 0]))]],
  ] as const) {
    const { start, fromWorker, sent, protocolErrors } = setup();
    const file = fakeFile();
    const { exchange } = start(file);
    await sent();
    for (const bytes of answer(exchange.id)) fromWorker(bytes);
    await sent();
    assert.equal(protocolErrors.length, 1, name);
    assert.equal(protocolErrors[0]!.code, name === 'twice' ? 'W2N_ERR_PROTO_UNEXPECTED' : 'W2N_ERR_PROTO_BAD_PAYLOAD', name);
  }
  // A request that was offered no file (a body streamed as it arrives).
  const { channel, fromWorker, sent, protocolErrors } = setup();
  const exchange = new Exchange(encodeStrings(['REQUEST_METHOD', 'POST']), Readable.from([BODY]),
    { head() {}, body() {}, sendFile() {}, fail() {} }, { method: 'POST', path: '/' });
  channel.run(exchange);
  await sent();
  fromWorker(encodeFileOpened(exchange.id, true));
  await sent();
  assert.equal(protocolErrors[0]?.code, 'W2N_ERR_PROTO_UNEXPECTED');
});
