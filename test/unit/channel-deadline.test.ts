/**
 * Channel.expire (src/pool/channel.ts), the request deadline (`--timeout`), in simulated time
 * (test/helpers/simulated-clock.ts): a request is answered 504 once it has run `timeoutMs` by the
 * channel's clock, the worker is told to interrupt it (CANCEL with FLAG_TIMEOUT) and its slot
 * stays taken; still running `graceMs` later, the worker is hung. The socket is an in-memory
 * Duplex whose written bytes are decoded back into frames.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { Channel } from '../../src/pool/channel.js';
import { Exchange, type AppFailure } from '../../src/pool/exchange.js';
import { encodeStrings } from '../../src/protocol/encode.js';
import { FrameDecoder } from '../../src/protocol/decode.js';
import { FLAG_TIMEOUT, FrameType, type Frame } from '../../src/protocol/frames.js';
import { SimulatedClock } from '../helpers/simulated-clock.js';

const TIMEOUT_MS = 30_000;
const GRACE_MS = 5_000;

function setup() {
  const clock = new SimulatedClock();
  const frames: Frame[] = [];
  const decoder = new FrameDecoder((frame) => frames.push(frame), (error) => assert.fail(error.message));
  const socket = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, done) {
      decoder.push(chunk);
      done();
    },
  });
  const channel = new Channel(socket, { requestWindowBytes: 1 << 16, responseWindowBytes: 1 << 16 },
    { onControl() {}, onExchangeEnded() {}, onProtocolError() {} }, null, clock);
  const start = (): { exchange: Exchange; failures: AppFailure[] } => {
    const failures: AppFailure[] = [];
    const exchange = new Exchange(encodeStrings(['REQUEST_METHOD', 'GET', 'PATH_INFO', '/']), null,
      { head() {}, body() {}, sendFile() {}, fail: (failure) => failures.push(failure) }, { method: 'GET', path: '/' });
    channel.run(exchange);
    return { exchange, failures };
  };
  const expire = () => channel.expire(clock.now(), TIMEOUT_MS, GRACE_MS, TIMEOUT_MS / 1000);
  /** The channel's writes of this turn leave when the turn ends (it corks them). */
  const sent = async (): Promise<Frame[]> => {
    await new Promise((resolve) => setImmediate(resolve));
    return frames;
  };
  return { clock, channel, start, expire, sent };
}

test('a request past --timeout is answered 504 and the worker told to stop it; not a moment before', async () => {
  const { clock, channel, start, expire, sent } = setup();
  const { exchange, failures } = start();
  clock.advance(TIMEOUT_MS - 1);
  assert.deepEqual(expire(), { isHung: false, timedOut: 0 });
  assert.equal(failures.length, 0);

  clock.advance(1);
  assert.deepEqual(expire(), { isHung: false, timedOut: 1 });
  assert.equal(failures.length, 1);
  assert.equal(failures[0]!.error.code, 'W2N_ERR_WORKER_TIMEOUT');
  assert.equal(failures[0]!.error.httpStatus, 504);
  assert.equal(failures[0]!.error.details.timeoutSeconds, TIMEOUT_MS / 1000);
  const cancel = (await sent()).find((frame) => frame.type === FrameType.CANCEL);
  assert.ok(cancel !== undefined, 'CANCEL sent to the worker');
  assert.equal(cancel.id, exchange.id);
  assert.equal(cancel.flags & FLAG_TIMEOUT, FLAG_TIMEOUT);
  assert.equal(channel.inFlight, 1, 'the slot stays taken until the worker ends it');

  clock.advance(1_000);
  assert.deepEqual(expire(), { isHung: false, timedOut: 0 }, 'answered once only');
  assert.equal(failures.length, 1);
});

test('still running graceMs after its timeout: the worker is hung', () => {
  const { clock, start, expire } = setup();
  start();
  clock.advance(TIMEOUT_MS);
  expire();
  clock.advance(GRACE_MS - 1);
  assert.equal(expire().isHung, false);
  clock.advance(1);
  assert.equal(expire().isHung, true);
});

test('each request has its own deadline, counted from when it started on the channel', () => {
  const { clock, start, expire } = setup();
  const early = start();
  clock.advance(10_000);
  const late = start();
  clock.advance(TIMEOUT_MS - 10_000);
  assert.equal(expire().timedOut, 1);
  assert.equal(early.failures.length, 1);
  assert.equal(late.failures.length, 0);
  clock.advance(10_000);
  assert.equal(expire().timedOut, 1);
  assert.equal(late.failures.length, 1);
});

test('a request whose client left is not answered at its deadline, but the worker is still told', async () => {
  const { clock, start, expire, sent } = setup();
  const { exchange, failures } = start();
  exchange.cancel();
  clock.advance(TIMEOUT_MS);
  assert.equal(expire().timedOut, 1);
  assert.equal(failures.length, 0);
  const cancels = (await sent()).filter((frame) => frame.type === FrameType.CANCEL);
  assert.ok(cancels.some((frame) => (frame.flags & FLAG_TIMEOUT) !== 0), 'CANCEL with FLAG_TIMEOUT');
});
