/**
 * Channel (src/pool/channel.ts): writes of one turn are corked together, but past
 * FLUSH_CORKED_BYTES they leave at once, so a long turn (hundreds of requests read in one poll
 * phase) does not hold the first requests back from the worker until it ends. Real sockets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { Channel, FLUSH_CORKED_BYTES } from '../../src/pool/channel.js';
import { Exchange, type ResponseSink } from '../../src/pool/exchange.js';
import { encodeStrings } from '../../src/protocol/encode.js';
import { FrameDecoder } from '../../src/protocol/decode.js';
import { FrameType, type Frame } from '../../src/protocol/frames.js';

const ignoringSink: ResponseSink = { head() {}, body() {}, sendFile() {}, fail() {} };

/** A connected pair of loopback sockets: the front's end and the worker's end. */
async function socketPair(): Promise<{ front: net.Socket; worker: net.Socket; close: () => void }> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const accepted = once(server, 'connection');
  const front = net.connect(port, '127.0.0.1');
  const [worker] = (await accepted) as [net.Socket];
  await once(front, 'connect');
  return { front, worker, close: () => { front.destroy(); worker.destroy(); server.close(); } };
}

/** A Channel on the front's end of a socket pair; the frames the worker's end receives, decoded. */
async function channelWithPeer(t: { after(fn: () => void): void }): Promise<{ front: net.Socket; worker: net.Socket; channel: Channel; received: Frame[] }> {
  const { front, worker, close } = await socketPair();
  t.after(close);
  const events = { onControl() {}, onExchangeEnded() {}, onProtocolError() {} };
  const channel = new Channel(front, { requestWindowBytes: 1 << 20, responseWindowBytes: 1 << 20 }, events);
  const received: Frame[] = [];
  const decoder = new FrameDecoder((frame) => received.push(frame), (error) => assert.fail(error.message));
  worker.on('data', (chunk: Buffer) => decoder.push(chunk));
  return { front, worker, channel, received };
}

/** A request's environ of about `bytes` bytes. */
function environ(bytes: number): Buffer {
  return encodeStrings(['REQUEST_METHOD', 'GET', 'PATH_INFO', '/', 'HTTP_X_PAD', 'x'.repeat(bytes)]);
}

test('requests written in one turn leave mid-turn once they pass FLUSH_CORKED_BYTES, and arrive whole and in order', async (t) => {
  const { front, worker, channel, received } = await channelWithPeer(t);

  const count = 100;
  const perRequest = 300;
  for (let n = 0; n < count; n++) channel.run(new Exchange(environ(perRequest), null, ignoringSink, { method: 'GET', path: '/' }));
  // Same turn still: without the mid-turn flush all ~30 KB would sit corked in the socket.
  assert.ok(count * perRequest > 3 * FLUSH_CORKED_BYTES, 'the test writes several thresholds worth');
  assert.ok(front.writableLength < FLUSH_CORKED_BYTES, `corked bytes stay under the threshold (${front.writableLength})`);

  while (received.length < count) await once(worker, 'data');
  assert.deepEqual(received.map((frame) => frame.type), Array(count).fill(FrameType.REQUEST));
  assert.deepEqual(received.map((frame) => frame.id), Array.from({ length: count }, (_, n) => n + 1), 'in order');
});

test('a few requests in one turn stay corked until the turn ends (one write for all)', async (t) => {
  const { front, worker, channel, received } = await channelWithPeer(t);

  for (let n = 0; n < 5; n++) channel.run(new Exchange(environ(100), null, ignoringSink, { method: 'GET', path: '/' }));
  assert.ok(front.writableLength > 500, `still corked in this turn (${front.writableLength} bytes)`);
  while (received.length < 5) await once(worker, 'data');
  assert.equal(front.writableLength, 0);
});
