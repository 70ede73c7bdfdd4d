/**
 * An application's WebSocket on a channel (src/pool/channel.ts, websocket-frames.ts), with an
 * in-memory socket and a simulated clock: FLAG_UPGRADE, WS_ACCEPT, messages and credit both
 * ways, the close, the deadline that sleeps while the socket is open, and the frames a worker may
 * not send (each a protocol error: the worker is replaced).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { Channel } from '../../src/pool/channel.js';
import { Exchange, type WebSocketLink, type WebSocketSink } from '../../src/pool/exchange.js';
import { encodeCredit, encodeFrame, encodeStrings } from '../../src/protocol/encode.js';
import { FrameDecoder } from '../../src/protocol/decode.js';
import { FLAG_BINARY, FLAG_END, FLAG_TIMEOUT, FLAG_UPGRADE, FrameType, type Frame } from '../../src/protocol/frames.js';
import type { ServerError } from '../../src/errors/index.js';
import { SimulatedClock } from '../helpers/simulated-clock.js';

const WINDOW = 1024;
const TIMEOUT_MS = 30_000;

function setup() {
  const clock = new SimulatedClock();
  const sent: Frame[] = [];
  const decoder = new FrameDecoder((frame) => sent.push({ ...frame, payload: Buffer.from(frame.payload) }), (error) => assert.fail(error.message));
  const socket = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, done) {
      decoder.push(chunk);
      done();
    },
  });
  const errors: ServerError[] = [];
  const ended: Exchange[] = [];
  const channel = new Channel(socket, { requestWindowBytes: WINDOW, responseWindowBytes: WINDOW },
    { onControl() {}, onExchangeEnded: (exchange) => ended.push(exchange), onProtocolError: (error) => errors.push(error) }, null, clock);
  const calls: string[] = [];
  let link: WebSocketLink | null = null;
  const websocket: WebSocketSink = {
    accept: (protocol, given) => { link = given; calls.push(`accept ${protocol}`); },
    message: (data, isBinary) => calls.push(`message ${isBinary ? 'binary' : 'text'} ${data.toString()}`),
    close: (code, reason, isLast) => calls.push(`close ${code} ${reason} ${isLast}`),
    pause: () => calls.push('pause'),
    resume: () => calls.push('resume'),
  };
  const exchange = new Exchange(encodeStrings(['REQUEST_METHOD', 'GET', 'PATH_INFO', '/ws']), null,
    { head: () => calls.push('head'), body() {}, sendFile() {}, fail: (failure) => calls.push(`fail ${failure.error.code}`), websocket },
    { method: 'GET', path: '/ws' });
  channel.run(exchange);
  const fromWorker = (type: number, flags: number, payload?: Buffer): void => {
    socket.push(encodeFrame(type as Frame['type'], flags, exchange.id, payload));
  };
  /** The channel's writes of this turn leave when the turn ends (it corks them). */
  const flushed = async (): Promise<Frame[]> => {
    await new Promise((resolve) => setImmediate(resolve));
    return sent;
  };
  /** Lets the socket's pushed bytes reach the channel. */
  const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
  const expire = () => channel.expire(clock.now(), TIMEOUT_MS, 5_000, TIMEOUT_MS / 1000);
  return { clock, channel, exchange, calls, errors, ended, fromWorker, flushed, settle, expire, link: () => link! };
}

const closePayload = (code: number, reason = ''): Buffer => {
  const payload = Buffer.alloc(2 + Buffer.byteLength(reason));
  payload.writeUInt16BE(code, 0);
  payload.write(reason, 2);
  return payload;
};

test('a WebSocket request goes out with FLAG_UPGRADE; accepted, messages flow with credit both ways; closed, the app returns', async () => {
  const t = setup();
  const [request] = await t.flushed();
  assert.equal(request!.type, FrameType.REQUEST);
  assert.equal(request!.flags, FLAG_END | FLAG_UPGRADE);

  t.fromWorker(FrameType.WS_ACCEPT, 0, Buffer.from('chat'));
  t.fromWorker(FrameType.WS_MESSAGE, 0, Buffer.from('héllo'));
  t.fromWorker(FrameType.WS_MESSAGE, FLAG_BINARY, Buffer.from('b'));
  await t.settle();
  assert.deepEqual(t.calls, ['accept chat', 'message text héllo', 'message binary b']);

  // The client's messages: the client is paused once a window is in flight, resumed by CREDIT.
  t.link().message(Buffer.alloc(WINDOW - 1), true);
  assert.ok(!t.calls.includes('pause'));
  t.link().message(Buffer.from('x'), false);
  assert.ok(t.calls.includes('pause'));
  const messages = (await t.flushed()).filter((frame) => frame.type === FrameType.WS_MESSAGE);
  assert.deepEqual(messages.map((frame) => [frame.flags, frame.payload.length]), [[FLAG_BINARY, WINDOW - 1], [0, 1]]);
  t.fromWorker(FrameType.CREDIT, 0, encodeCredit(0, WINDOW).subarray(12));
  await t.settle();
  assert.equal(t.calls.at(-1), 'resume');

  // Open: no deadline, whatever the clock says.
  t.clock.advance(TIMEOUT_MS * 10);
  assert.deepEqual(t.expire(), { isHung: false, timedOut: 0 });

  // The client closes: the worker hears it once; its --timeout clock starts then.
  t.link().closed(1000, 'bye');
  t.link().closed(1006, '');
  const closes = (await t.flushed()).filter((frame) => frame.type === FrameType.WS_CLOSE);
  assert.equal(closes.length, 1);
  assert.equal(closes[0]!.payload.readUInt16BE(0), 1000);
  assert.equal(closes[0]!.payload.subarray(2).toString(), 'bye');
  t.clock.advance(TIMEOUT_MS - 1);
  assert.equal(t.expire().timedOut, 0);

  t.fromWorker(FrameType.WS_CLOSE, FLAG_END, closePayload(1000));
  await t.settle();
  assert.deepEqual(t.ended, [t.exchange]);
  assert.equal(t.calls.at(-1), 'close 1000  true');
  assert.equal(t.channel.inFlight, 0);
  assert.deepEqual(t.errors, []);
});

test('a WebSocket whose client is gone and whose app does not return gets CANCEL with FLAG_TIMEOUT after --timeout', async () => {
  const t = setup();
  t.fromWorker(FrameType.WS_ACCEPT, 0);
  await t.settle();
  t.exchange.cancel(); // the front's response closed (the client went away)
  t.clock.advance(TIMEOUT_MS);
  assert.equal(t.expire().timedOut, 1);
  const frames = await t.flushed();
  const close = frames.find((frame) => frame.type === FrameType.WS_CLOSE);
  assert.equal(close?.payload.readUInt16BE(0), 1006, 'the app heard the client go (1006), not a CANCEL');
  const cancels = frames.filter((frame) => frame.type === FrameType.CANCEL);
  assert.deepEqual(cancels.map((frame) => frame.flags), [FLAG_TIMEOUT]);
});

test('SHUTDOWN closes the worker\'s open WebSockets with 1001', async () => {
  const t = setup();
  t.fromWorker(FrameType.WS_ACCEPT, 0);
  await t.settle();
  t.channel.sendControl(FrameType.SHUTDOWN);
  assert.equal(t.calls.at(-1), 'close 1001 server restarting false');
});

const refusals: [what: string, frames: [type: number, flags: number, payload?: Buffer][]][] = [
  ['a message before WS_ACCEPT', [[FrameType.WS_MESSAGE, 0, Buffer.from('x')]]],
  ['WS_ACCEPT twice', [[FrameType.WS_ACCEPT, 0], [FrameType.WS_ACCEPT, 0]]],
  ['WS_ACCEPT after the head', [[FrameType.RESPONSE, 0, Buffer.from('00000006323030204f4b', 'hex')], [FrameType.WS_ACCEPT, 0]]],
  ['a RESPONSE after WS_ACCEPT', [[FrameType.WS_ACCEPT, 0], [FrameType.RESPONSE, FLAG_END, Buffer.from('00000006323030204f4b', 'hex')]]],
  ['a text message that is not UTF-8', [[FrameType.WS_ACCEPT, 0], [FrameType.WS_MESSAGE, 0, Buffer.from([0xff, 0xfe])]]],
  ['messages past the window', [[FrameType.WS_ACCEPT, 0], [FrameType.WS_MESSAGE, FLAG_BINARY, Buffer.alloc(WINDOW)], [FrameType.WS_MESSAGE, FLAG_BINARY, Buffer.from('x')]]],
  ['a close code an endpoint may not send', [[FrameType.WS_ACCEPT, 0], [FrameType.WS_CLOSE, 0, closePayload(1006)]]],
  ['a subprotocol that is no token', [[FrameType.WS_ACCEPT, 0, Buffer.from('a b')]]],
];

for (const [what, frames] of refusals) {
  test(`a worker that sends ${what} broke the protocol`, async () => {
    const t = setup();
    for (const [type, flags, payload] of frames) t.fromWorker(type, flags, payload);
    await t.settle();
    assert.equal(t.errors.length, 1, t.calls.join(', '));
    assert.match(t.errors[0]!.code, /^W2N_ERR_PROTO_(UNEXPECTED|BAD_PAYLOAD)$/);
  });
}
