/**
 * Dispatcher (src/pool/dispatcher.ts) in simulated time (test/helpers/simulated-clock.ts): which
 * worker a request goes to, the bounded queue (full → 503 at once), the queue timeout, a client
 * that leaves while queued, `-w`, and `--queue-target` shedding. Fake workers: the dispatcher
 * only reads hasRoom/inFlight and calls run().
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { ServerError } from '../../src/errors/index.js';
import { Dispatcher, STANDING_AFTER_MS, type DispatcherOptions } from '../../src/pool/dispatcher.js';
import { Exchange, type AppFailure } from '../../src/pool/exchange.js';
import type { WorkerProcess } from '../../src/pool/worker.js';
import type { RejectReason } from '../../src/observability/metrics.js';
import { SimulatedClock } from '../helpers/simulated-clock.js';

/** A worker with `capacity` slots that runs what it is given until the test ends it. */
class FakeWorker {
  readonly running: Exchange[] = [];
  constructor(readonly name: string, private readonly capacity = 1) {}
  get inFlight(): number {
    return this.running.length;
  }
  get hasRoom(): boolean {
    return this.running.length < this.capacity;
  }
  run(exchange: Exchange): void {
    exchange.state = 'running';
    this.running.push(exchange);
  }
}

interface Request {
  exchange: Exchange;
  failure: AppFailure | null;
}

function request(path = '/'): Request {
  const entry: Request = { exchange: null!, failure: null };
  entry.exchange = new Exchange(Buffer.alloc(0), null, {
    head() {}, body() {}, sendFile() {},
    fail(failure) { entry.failure = failure; },
  }, { method: 'GET', path });
  return entry;
}

/** The request's failure, which must have come (a call, so an earlier `=== null` assertion does not narrow it). */
function failureOf(entry: Request): AppFailure {
  assert.ok(entry.failure !== null, 'the request was answered with an error');
  return entry.failure;
}

function setup(workers: FakeWorker[], options: Partial<DispatcherOptions> = {}) {
  const clock = new SimulatedClock();
  const rejected: RejectReason[] = [];
  const logLines: { event: string; why: string }[] = [];
  const log = pino({ level: 'debug' }, new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(JSON.parse(chunk.toString()) as { event: string; why: string });
      done();
    },
  }));
  const dispatcher = new Dispatcher(() => workers as unknown as WorkerProcess[], {
    maxInApp: null, queueSize: 10, queueTimeoutMs: 1_000, queueTargetMs: null,
    log, onRejected: (why) => rejected.push(why), clock, ...options,
  });
  /** The worker ends `exchange`, as the pool would (settle, then release the slot). */
  const finish = (worker: FakeWorker, exchange: Exchange): void => {
    worker.running.splice(worker.running.indexOf(exchange), 1);
    exchange.settle();
    dispatcher.release();
  };
  return { clock, dispatcher, rejected, logLines, finish };
}

test('an idle worker gets the request at once: the least loaded, ties in turn', () => {
  const a = new FakeWorker('a', 4);
  const b = new FakeWorker('b', 4);
  const { dispatcher } = setup([a, b]);
  for (let n = 0; n < 4; n++) dispatcher.dispatch(request().exchange);
  assert.deepEqual([a.inFlight, b.inFlight], [2, 2], 'ties go round-robin');
  assert.equal(dispatcher.queued, 0);
  assert.equal(dispatcher.running, 4);

  // One request at a time: every pick is a tie, and the idle workers take turns (they warm up evenly).
  const seen: string[] = [];
  const [x, y, z] = [new FakeWorker('x'), new FakeWorker('y'), new FakeWorker('z')];
  const { dispatcher: serial, finish } = setup([x, y, z]);
  for (let n = 0; n < 6; n++) {
    serial.dispatch(request().exchange);
    const worker = [x, y, z].find((candidate) => candidate.inFlight === 1)!;
    seen.push(worker.name);
    finish(worker, worker.running[0]!);
  }
  assert.deepEqual(seen, ['x', 'y', 'z', 'x', 'y', 'z']);

  const c = new FakeWorker('c', 4);
  const { dispatcher: other } = setup([a, c]);
  other.dispatch(request().exchange);
  assert.deepEqual([a.inFlight, c.inFlight], [2, 1], 'the idle worker wins over a busier one');
});

test('no room: the request waits, and runs first in first out when a slot opens', () => {
  const worker = new FakeWorker('w', 1);
  const { dispatcher, finish } = setup([worker]);
  const [first, second, third] = [request('/1'), request('/2'), request('/3')];
  for (const { exchange } of [first, second, third]) dispatcher.dispatch(exchange);
  assert.equal(dispatcher.queued, 2);
  assert.equal(second!.exchange.state, 'queued');

  finish(worker, first!.exchange);
  assert.equal(worker.running[0], second!.exchange, 'the oldest queued request runs next');
  assert.equal(dispatcher.queued, 1);
  finish(worker, second!.exchange);
  assert.equal(worker.running[0], third!.exchange);
  assert.equal(dispatcher.queued, 0);
});

test('each request\'s wait for a worker is told in the dispatcher\'s time: 0 when a worker had room', () => {
  const worker = new FakeWorker('w', 1);
  const waited: number[] = [];
  const { clock, dispatcher, finish } = setup([worker], { onWaited: (ms) => waited.push(ms) });
  const [first, second] = [request('/1'), request('/2')];
  dispatcher.dispatch(first!.exchange);
  dispatcher.dispatch(second!.exchange);
  clock.advance(250);
  finish(worker, first!.exchange);
  assert.deepEqual(waited, [0, 250]);
});

test('a full queue answers 503 at once (W2N_ERR_QUEUE_FULL, reason "queue full"), logged once per burst', () => {
  const worker = new FakeWorker('w', 1);
  const { dispatcher, rejected, logLines } = setup([worker], { queueSize: 2 });
  const requests = Array.from({ length: 6 }, () => request());
  for (const { exchange } of requests) dispatcher.dispatch(exchange);
  assert.equal(worker.inFlight, 1);
  assert.equal(dispatcher.queued, 2);
  const failed = requests.filter(({ failure }) => failure !== null);
  assert.equal(failed.length, 3, 'the three past the queue are answered now, with no time passing');
  for (const { failure, exchange } of failed) {
    assert.equal(failure!.error.code, 'W2N_ERR_QUEUE_FULL');
    assert.equal(failure!.error.httpStatus, 503);
    assert.equal(exchange.state, 'done');
  }
  assert.deepEqual(rejected, ['queue full', 'queue full', 'queue full']);
  assert.equal(dispatcher.rejectedTotal, 3);
  const logged = logLines.filter((line) => line.event === 'queue.full');
  assert.equal(logged.length, 1, 'one log line for the burst');
  assert.equal(logged[0]!.why, 'queue full');
});

test('a request queued past --queue-timeout is answered 503 (W2N_ERR_QUEUE_TIMEOUT), not before', () => {
  const worker = new FakeWorker('w', 1);
  const { clock, dispatcher, rejected } = setup([worker], { queueTimeoutMs: 1_000 });
  dispatcher.dispatch(request().exchange);
  const waiting = request();
  dispatcher.dispatch(waiting.exchange);
  assert.equal(clock.timerCount, 1, 'the queue sweeps while it holds requests');

  clock.advance(999);
  assert.ok(waiting.failure === null, 'still within its queue timeout');
  assert.equal(dispatcher.queued, 1);
  // The sweep runs every 100 ms: the answer comes at most one sweep after the timeout.
  clock.advance(101);
  const { error } = failureOf(waiting);
  assert.equal(error.code, 'W2N_ERR_QUEUE_TIMEOUT');
  assert.equal(error.httpStatus, 503);
  assert.equal(error.details.waitedMs, 1_100);
  assert.deepEqual(rejected, ['queue timeout']);
  assert.equal(dispatcher.queued, 0);
  clock.advance(100);
  assert.equal(clock.timerCount, 0, 'an empty queue stops its sweep');
});

test('a queued request whose client left never reaches a worker and is not answered', () => {
  const worker = new FakeWorker('w', 1);
  const { clock, dispatcher, rejected, finish } = setup([worker]);
  const running = request();
  const leaving = request();
  const staying = request();
  for (const { exchange } of [running, leaving, staying]) dispatcher.dispatch(exchange);
  assert.equal(dispatcher.queued, 2);

  leaving.exchange.cancel();
  assert.equal(dispatcher.queued, 1, 'it leaves the queue at once');
  assert.equal(leaving.exchange.state, 'done');
  finish(worker, running.exchange);
  assert.deepEqual(worker.running, [staying.exchange], 'the slot goes to the next request that is still there');
  clock.advance(5_000);
  assert.ok(leaving.failure === null, 'no 503 for a client that is gone');
  assert.deepEqual(rejected, []);
});

test('-w caps the requests in the application across the pool, whatever room the workers have', () => {
  const a = new FakeWorker('a', 4);
  const b = new FakeWorker('b', 4);
  const { dispatcher, finish } = setup([a, b], { maxInApp: 3 });
  const requests = Array.from({ length: 5 }, () => request());
  for (const { exchange } of requests) dispatcher.dispatch(exchange);
  assert.equal(a.inFlight + b.inFlight, 3);
  assert.equal(dispatcher.queued, 2);
  finish(a, a.running[0]!);
  assert.equal(a.inFlight + b.inFlight, 3, 'a finished request lets one queued request in');
  assert.equal(dispatcher.queued, 1);
});

test('no worker ready: requests wait, and pump() starts them when one is', () => {
  const worker = new FakeWorker('w', 2);
  const workers: FakeWorker[] = [];
  const { dispatcher } = setup(workers);
  const first = request();
  dispatcher.dispatch(first.exchange);
  assert.equal(dispatcher.queued, 1);
  workers.push(worker);
  dispatcher.pump();
  assert.deepEqual(worker.running, [first.exchange]);
});

test('--queue-target: a burst that drains within the interval waits as before', () => {
  const worker = new FakeWorker('w', 1);
  const { clock, dispatcher, rejected, finish } = setup([worker], { queueTargetMs: 10 });
  dispatcher.dispatch(request().exchange);
  const queued = [request(), request()];
  for (const { exchange } of queued) dispatcher.dispatch(exchange);
  clock.advance(STANDING_AFTER_MS - 20); // past the target, but the queue is not standing yet
  finish(worker, worker.running[0]!);
  finish(worker, worker.running[0]!);
  assert.equal(dispatcher.queued, 0, 'the burst drained');
  assert.deepEqual(rejected, []);
  assert.ok(queued.every(({ failure }) => failure === null));
});

test('--queue-target: once the queue stands, requests waiting past the target get 503 (reason "queue standing"), oldest first', () => {
  const worker = new FakeWorker('w', 1);
  const { clock, dispatcher, rejected, logLines } = setup([worker], { queueTargetMs: 10, queueTimeoutMs: 60_000 });
  dispatcher.dispatch(request().exchange);
  const old = request();
  dispatcher.dispatch(old.exchange);
  clock.advance(STANDING_AFTER_MS - 5);
  const fresh = request();
  dispatcher.dispatch(fresh.exchange);
  assert.ok(old.failure === null, 'not standing yet');

  clock.advance(5); // the queue has been non-empty for STANDING_AFTER_MS: it stands
  assert.equal(failureOf(old).error.code, 'W2N_ERR_QUEUE_TIMEOUT');
  assert.ok(fresh.failure === null, 'a request within the target keeps its place');
  assert.deepEqual(rejected, ['queue standing']);
  assert.equal(logLines.find((line) => line.event === 'queue.full')?.why, 'queue standing');

  clock.advance(10);
  assert.equal(failureOf(fresh).error.code, 'W2N_ERR_QUEUE_TIMEOUT', 'it too, once past the target while the queue stands');
  assert.equal(dispatcher.queued, 0);
});

test('--queue-target: shedding that empties the queue for a moment does not end the overload', () => {
  const worker = new FakeWorker('w', 1);
  const { clock, dispatcher, rejected } = setup([worker], { queueTargetMs: 10, queueTimeoutMs: 60_000 });
  dispatcher.dispatch(request().exchange);
  dispatcher.dispatch(request().exchange);
  clock.advance(STANDING_AFTER_MS);
  assert.deepEqual(rejected, ['queue standing']);
  assert.equal(dispatcher.queued, 0);
  // Empty for less than STANDING_AFTER_MS: still standing, so a new arrival is held to the target at once.
  clock.advance(STANDING_AFTER_MS - 10);
  const next = request();
  dispatcher.dispatch(next.exchange);
  clock.advance(20);
  assert.equal(next.failure?.error.code, 'W2N_ERR_QUEUE_TIMEOUT');
  assert.deepEqual(rejected, ['queue standing', 'queue standing']);
});

test('--queue-target: a queue empty for the whole interval is no longer standing', () => {
  const worker = new FakeWorker('w', 1);
  const { clock, dispatcher, rejected } = setup([worker], { queueTargetMs: 10, queueTimeoutMs: 60_000 });
  dispatcher.dispatch(request().exchange);
  dispatcher.dispatch(request().exchange);
  clock.advance(STANDING_AFTER_MS);
  assert.deepEqual(rejected, ['queue standing']);
  clock.advance(STANDING_AFTER_MS); // empty that long: the overload is over
  const next = request();
  dispatcher.dispatch(next.exchange);
  clock.advance(20);
  assert.ok(next.failure === null, 'waits past the target: a new burst, not yet standing');
});

test('failQueued fails every queued request with the given error (the pool is stopping)', () => {
  const worker = new FakeWorker('w', 1);
  const { dispatcher } = setup([worker]);
  const requests = [request(), request(), request()];
  for (const { exchange } of requests) dispatcher.dispatch(exchange);
  dispatcher.failQueued(() => new ServerError('W2N_ERR_WORKER_DIED', { workerId: 1, pid: 1, how: 'test' }));
  assert.equal(dispatcher.queued, 0);
  assert.deepEqual(requests.map(({ failure }) => failure?.error.code), [undefined, 'W2N_ERR_WORKER_DIED', 'W2N_ERR_WORKER_DIED']);
});
