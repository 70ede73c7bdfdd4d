/**
 * @module One worker's socket: frames in and out, request-id correlation, flow control.
 *
 * Writes made in one event-loop turn are corked together and leave in one writev, so fifty
 * requests arriving at once cost one syscall here and one read in the worker, not fifty; past
 * FLUSH_CORKED_BYTES they leave at once, mid-turn. Every running exchange is in
 * `running` until the worker ends it or the channel closes; `close()` fails whatever is left,
 * so no pending entry outlives its worker.
 */
import type { Duplex } from 'node:stream';
import { ServerError, workerError } from '../errors/index.js';
import { escapeControl, escapeLines } from '../observability/escape.js';
import { FrameDecoder } from '../protocol/decode.js';
import { encodeBodyFile, encodeCredit, encodeFileOpened, encodeFrame, encodeHeader, encodeJson, encodeRequest } from '../protocol/encode.js';
import { FLAG_END, FLAG_TIMEOUT, FrameType, MAX_CHUNK, MAX_PAYLOAD, frameTypeName, type Frame } from '../protocol/frames.js';
import { decodeCredit, decodeError, decodeFileOpened, decodeResponse, decodeSendfile, type ErrorPayload } from '../protocol/payloads.js';
import type { AppFailure, Exchange } from './exchange.js';
import { WebSocketFrames, type WebSocketState } from './websocket-frames.js';
import { RequestTable } from './request-table.js';
import type { AnswerPacer } from './answer-pacer.js';
import type { ReadLease } from './channel-reads.js';
import { systemClock, type Clock } from './clock.js';

export interface ChannelWindows {
  /** Request-body bytes the front may have un-credited per request. */
  requestWindowBytes: number;
  /** Response-body bytes the worker may have un-credited per request. */
  responseWindowBytes: number;
}

export interface ChannelEvents {
  /** A frame for request id 0 (READY, or ERROR when the worker cannot start). */
  onControl(frame: Frame): void;
  /** An exchange ended (the worker answered or failed it, or it was cancelled). */
  onExchangeEnded(exchange: Exchange): void;
  /** The bytes from the worker make no sense: the channel is dead. */
  onProtocolError(error: ServerError): void;
}

interface Running {
  exchange: Exchange;
  /** Request-body bytes sent and not yet credited by the worker. */
  bodyBytesInFlight: number;
  isBodyPaused: boolean;
  /** The worker has sent its last frame for it: credits are no longer needed. */
  isResponseComplete: boolean;
  /** Response bytes drained but not yet credited back (credits go out in batches). */
  pendingCreditBytes: number;
  /** Response body bytes received and not yet credited back: never more than the window. */
  responseBytesUncredited: number;
  startedAtMs: number;
  /** When the request passed --timeout (already answered 504; the worker still has it), else 0. */
  timedOutAtMs: number;
  /** The worker sent its RESPONSE (the head): body frames may follow, another RESPONSE may not. */
  hasHead: boolean;
  /** Where its WebSocket is (websocket-frames.ts); `no` for an ordinary request. */
  websocket: WebSocketState;
  /**
   * Its body's file offered to the worker (BODY_FILE) and not yet answered: the front's hold on
   * the descriptor, released by FILE_OPENED or the end of the exchange; else null.
   */
  releaseBodyFile: (() => void) | null;
}

const MAX_REQUEST_ID = 0xffffffff;

/**
 * A worker can open the front's descriptors only through Linux's /proc/<pid>/fd; elsewhere a
 * spooled body is always streamed. (Where /proc is there but closed to it, the worker answers
 * FILE_OPENED 0 and the body is streamed too.)
 */
const CAN_LEND_FILES = process.platform === 'linux';

/**
 * Response body frames reach the sink piece by piece as the socket reads them, never joined
 * (protocol/decode.ts): the sink writes any split of a body, and the window counts bytes, not
 * frames.
 */
const STREAMED_FRAMES: ReadonlySet<number> = new Set([FrameType.RESPONSE_BODY]);

/**
 * Corked bytes that go out at once instead of at the end of the turn. Why: a turn's poll phase
 * can be long (hundreds of clients connecting and sending at once: the README, "Measured, not
 * assumed"); held to its end, the first requests read would reach the worker as late as the
 * last. 8 KiB is about 25 small requests, so batching still saves nearly every syscall.
 */
export const FLUSH_CORKED_BYTES = 8 * 1024;

export class Channel {
  private readonly running = new RequestTable<Running>();
  private readonly decoder: FrameDecoder;
  private readonly websockets: WebSocketFrames<Running>;
  private nextId = 1;
  private isCorked = false;
  private isClosed = false;
  /** The worker broke the protocol: its frames are no longer read. */
  private isBroken = false;
  /** The lent read being decoded, if any (receive). */
  private lease: ReadLease | null = null;

  constructor(
    private readonly socket: Duplex,
    private readonly windows: ChannelWindows,
    private readonly events: ChannelEvents,
    /** Paces whole answers to the clients (answer-pacer.ts); shared by every worker's channel. */
    private readonly pacer: AnswerPacer | null = null,
    /** When a request started, for its deadline (expire); tests pass a simulated one (clock.ts). */
    private readonly clock: Clock = systemClock,
  ) {
    this.decoder = new FrameDecoder((frame) => this.onFrame(frame), (error) => this.onDecodeError(error), MAX_PAYLOAD, STREAMED_FRAMES);
    this.websockets = new WebSocketFrames<Running>({
      write: (bytes) => this.write(bytes),
      isRunning: (entry) => this.running.get(entry.exchange.id) === entry,
      acknowledge: (entry, bytes) => this.acknowledge(entry, bytes),
      end: (entry) => this.end(entry),
      outOfOrder: (frame, state) => this.outOfOrder(frame, state),
      onDecodeError: (error) => this.onDecodeError(error),
      now: () => this.clock.now(),
    }, windows);
    socket.on('data', (chunk: Buffer) => { this.receive(chunk); });
    // Errors surface as the worker's exit; a write to a dead socket must not crash the front.
    socket.on('error', () => undefined);
  }

  /**
   * Bytes read from the worker (the socket's 'data', or its owner's reads: channel-reads.ts).
   * With a lease the chunk's buffer is read into again: only response body pieces are passed on
   * as views, each holding the lease until written.
   */
  receive(chunk: Buffer, lease: ReadLease | null = null): void {
    if (this.isBroken) return;
    this.lease = lease;
    try {
      this.decoder.push(chunk, lease !== null);
    } finally {
      this.lease = null;
    }
  }

  get inFlight(): number {
    return this.running.size;
  }

  /** What each request in the worker is and when it started (the status page's oldest requests). */
  runningRequests(): { method: string; path: string; startedAtMs: number }[] {
    return this.running.values().map(({ exchange, startedAtMs }) => ({ method: exchange.label.method, path: exchange.label.path, startedAtMs }));
  }

  sendControl(type: (typeof FrameType)['HANDSHAKE' | 'SHUTDOWN'], payload?: unknown): void {
    const bytes = payload === undefined ? undefined : Buffer.isBuffer(payload) ? payload : encodeJson(payload);
    this.write(encodeFrame(type, 0, 0, bytes));
    // A draining worker (reload, recycle) would wait for its open WebSockets for ever: close them.
    if (type === FrameType.SHUTDOWN) this.websockets.closeAll(this.running.values(), 1001, 'server restarting');
  }

  /** Starts an exchange on this worker. */
  run(exchange: Exchange): void {
    const id = this.allocateId();
    exchange.id = id;
    exchange.state = 'running';
    const entry: Running = {
      exchange, bodyBytesInFlight: 0, isBodyPaused: false, isResponseComplete: false, pendingCreditBytes: 0, responseBytesUncredited: 0,
      startedAtMs: this.clock.now(), timedOutAtMs: 0, hasHead: false,
      websocket: exchange.sink.websocket !== undefined && exchange.body === null ? 'offered' : 'no',
      releaseBodyFile: null,
    };
    this.running.add(id, entry);
    exchange.attach({
      acknowledge: (bytes) => this.acknowledge(entry, bytes),
      cancel: () => this.cancel(entry),
    });
    this.write(encodeRequest(id, exchange.environ, exchange.body !== null, entry.websocket === 'offered'));
    if (exchange.body === null) return;
    const file = exchange.bodyFile;
    if (file !== null && CAN_LEND_FILES) {
      // The worker reads the file itself (one pass through the front instead of two); its
      // FILE_OPENED says whether it could, and the body is streamed as usual if not.
      entry.releaseBodyFile = file.retain();
      this.write(encodeBodyFile(id, { pid: process.pid, fd: file.fd, length: file.size, dev: file.dev, ino: file.ino }));
      return;
    }
    this.pumpBody(entry);
  }

  /** Fails every running exchange (the worker died) and stops reading. */
  close(failure: () => AppFailure): void {
    if (this.isClosed) return;
    this.isClosed = true;
    const entries = this.running.values();
    this.running.clear();
    for (const entry of entries) {
      if (!entry.exchange.isCancelled) entry.exchange.sink.fail(failure());
      this.end(entry);
    }
    this.socket.destroy();
  }

  /**
   * Deadlines: a request running longer than `timeoutMs` is answered now (504) and the worker is
   * told to interrupt it (CANCEL with FLAG_TIMEOUT); its slot stays taken until the worker ends
   * it. Returns true when one of them is still running `graceMs` after that: the worker is hung.
   * `nowMs` is a time of this channel's clock.
   */
  expire(nowMs: number, timeoutMs: number, graceMs: number, timeoutSeconds: number): { isHung: boolean; timedOut: number } {
    let isHung = false;
    let timedOut = 0;
    for (const entry of this.running.values()) {
      // An open WebSocket has no deadline (keep-alive pings watch it); its clock restarts when it closes.
      if (entry.websocket === 'open') continue;
      if (entry.timedOutAtMs === 0) {
        if (nowMs - entry.startedAtMs < timeoutMs) continue;
        entry.timedOutAtMs = nowMs;
        timedOut += 1;
        entry.isResponseComplete = true; // no more credits: the client has its answer
        this.write(encodeFrame(FrameType.CANCEL, FLAG_TIMEOUT, entry.exchange.id));
        if (!entry.exchange.isCancelled) entry.exchange.sink.fail({ error: new ServerError('W2N_ERR_WORKER_TIMEOUT', { timeoutSeconds }) });
      } else if (nowMs - entry.timedOutAtMs >= graceMs) {
        isHung = true;
      }
    }
    return { isHung, timedOut };
  }

  private allocateId(): number {
    // Ids grow by one, skipping 0 and any id whose table slot is still taken by a long request
    // (the table stays under half full, so this ends within a few steps).
    let id = this.nextId;
    while (id === 0 || !this.running.isFree(id)) id = id >= MAX_REQUEST_ID ? 1 : id + 1;
    this.nextId = id >= MAX_REQUEST_ID ? 1 : id + 1;
    return id;
  }

  private write(bytes: Buffer): void {
    if (this.isClosed) return;
    if (!this.isCorked) {
      // setImmediate, not nextTick: nextTick fires after each I/O callback, so it would uncork once
      // per request; the check phase runs once per loop turn, after every ready socket was read.
      this.isCorked = true;
      this.socket.cork();
      setImmediate(this.uncork);
    }
    this.socket.write(bytes);
    if (this.socket.writableLength >= FLUSH_CORKED_BYTES) {
      // Out now; the turn's later writes cork again and the scheduled uncork still ends the turn.
      this.socket.uncork();
      this.socket.cork();
    }
  }

  private readonly uncork = (): void => {
    this.isCorked = false;
    this.socket.uncork();
  };

  private pumpBody(entry: Running): void {
    const body = entry.exchange.body!;
    const id = entry.exchange.id;
    const onData = (chunk: Buffer): void => {
      if (entry.exchange.state !== 'running' || entry.exchange.isCancelled) return;
      for (let offset = 0; offset < chunk.length; offset += MAX_CHUNK) {
        const piece = chunk.subarray(offset, Math.min(offset + MAX_CHUNK, chunk.length));
        this.write(encodeHeader(FrameType.BODY, 0, id, piece.length));
        this.write(piece);
      }
      entry.bodyBytesInFlight += chunk.length;
      if (entry.bodyBytesInFlight >= this.windows.requestWindowBytes) {
        entry.isBodyPaused = true;
        body.pause();
      }
    };
    const onEnd = (): void => {
      cleanup();
      if (entry.exchange.state === 'running' && !entry.exchange.isCancelled) this.write(encodeFrame(FrameType.BODY, FLAG_END, id));
    };
    const onAbort = (): void => {
      cleanup();
      entry.exchange.cancel();
    };
    const cleanup = (): void => {
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onAbort);
      body.off('aborted', onAbort);
    };
    body.on('data', onData);
    body.on('end', onEnd);
    body.on('error', onAbort);
    body.on('aborted', onAbort);
  }

  private acknowledge(entry: Running, bytes: number): void {
    if (entry.isResponseComplete || entry.exchange.state !== 'running') return;
    // Credit in batches of a quarter window: fewer frames, and the worker never stalls on it.
    entry.pendingCreditBytes += bytes;
    if (entry.pendingCreditBytes >= this.windows.responseWindowBytes / 4) {
      this.write(encodeCredit(entry.exchange.id, entry.pendingCreditBytes));
      entry.responseBytesUncredited -= entry.pendingCreditBytes;
      entry.pendingCreditBytes = 0;
    }
  }

  /**
   * The client went away. The worker is told to stop the request (CANCEL: it interrupts it as
   * for a deadline), but its slot stays taken, and it still counts against `-w` and --timeout,
   * until the worker's last word on it: an abandoned request cannot run beside the next one.
   */
  private cancel(entry: Running): void {
    if (this.running.get(entry.exchange.id) !== entry) return;
    // An accepted WebSocket's client is gone: its application hears it as a close, as on gevent-websocket.
    if (this.websockets.cancel(entry)) return;
    entry.isResponseComplete = true; // no more credits: nobody reads the answer
    this.write(encodeFrame(FrameType.CANCEL, 0, entry.exchange.id));
  }

  private end(entry: Running): void {
    this.releaseBodyFile(entry);
    this.running.delete(entry.exchange.id);
    entry.isResponseComplete = true;
    entry.exchange.settle();
    this.events.onExchangeEnded(entry.exchange);
  }

  private onFrame(frame: Frame): void {
    if (this.isBroken) return;
    if (frame.id === 0) {
      this.events.onControl(frame);
      return;
    }
    const entry = this.running.get(frame.id);
    if (entry === undefined) return; // cancelled or failed already: late frames are expected
    const { sink } = entry.exchange;
    const isLast = (frame.flags & FLAG_END) !== 0;
    if (entry.timedOutAtMs !== 0 || entry.exchange.isCancelled) {
      // Answered 504 already, or its client left: wait for the worker's last word on it, then
      // free its slot.
      if (frame.type === FrameType.SENDFILE) this.write(encodeFileOpened(frame.id, false));
      // Its body is not needed any more: not streamed, even if the worker could not open the file.
      if (frame.type === FrameType.FILE_OPENED) this.releaseBodyFile(entry);
      if (isLast || frame.type === FrameType.ERROR || frame.type === FrameType.SENDFILE) this.end(entry);
      return;
    }
    if (this.websockets.isWebSocketFrame(frame, entry)) return;
    switch (frame.type) {
      case FrameType.RESPONSE: {
        if (entry.hasHead) return this.outOfOrder(frame, 'head already sent');
        const decoded = decodeResponse(frame.type, frame.payload);
        if (!decoded.ok) return this.onDecodeError(decoded.error);
        entry.hasHead = true;
        if (!this.takeWindow(entry, decoded.value.body.length)) return this.outOfOrder(frame, 'past the response window');
        const { head, body } = decoded.value;
        if (head === null) {
          this.failEntry(entry, { error: new ServerError('W2N_ERR_APP_BAD_RESPONSE', { reason: 'unreadable status line' }) });
          return;
        }
        if (!isLast) {
          sink.head(head, body, false);
          return;
        }
        this.finish(entry);
        // A whole answer: written now, or in a later turn when a burst of them comes in.
        if (this.pacer === null) sink.head(head, body, true);
        else this.pacer.write(() => sink.head(head, body, true));
        return;
      }
      case FrameType.RESPONSE_BODY:
        if (!entry.hasHead) return this.outOfOrder(frame, 'no head yet');
        if (!this.takeWindow(entry, frame.payload.length)) return this.outOfOrder(frame, 'past the response window');
        if (isLast) this.finish(entry);
        sink.body(frame.payload, isLast, this.lease !== null && frame.payload.buffer === this.lease.memory ? this.lease.hold() : undefined);
        return;
      case FrameType.SENDFILE: {
        if (!entry.hasHead) return this.outOfOrder(frame, 'no head yet');
        const decoded = decodeSendfile(frame.type, frame.payload);
        if (!decoded.ok) return this.onDecodeError(decoded.error);
        const { fd, offset, length } = decoded.value;
        const id = frame.id;
        this.finish(entry);
        sink.sendFile(this.procFdPath(fd), offset, length, (isOpen) => {
          this.write(encodeFileOpened(id, isOpen));
        });
        return;
      }
      case FrameType.ERROR: {
        const decoded = decodeError(frame.type, frame.payload);
        if (!decoded.ok) return this.onDecodeError(decoded.error);
        this.failEntry(entry, failureOf(decoded.value));
        return;
      }
      case FrameType.FILE_OPENED: {
        if (entry.releaseBodyFile === null) return this.outOfOrder(frame, 'no body file offered');
        const decoded = decodeFileOpened(frame.type, frame.payload);
        if (!decoded.ok) return this.onDecodeError(decoded.error);
        // Opened: the worker has its own descriptor. Not: it waits for the body as BODY frames.
        this.releaseBodyFile(entry);
        if (!decoded.value) this.pumpBody(entry);
        return;
      }
      case FrameType.CREDIT: {
        const decoded = decodeCredit(frame.type, frame.payload);
        if (!decoded.ok) return this.onDecodeError(decoded.error);
        entry.bodyBytesInFlight -= decoded.value;
        if (entry.isBodyPaused && entry.bodyBytesInFlight < this.windows.requestWindowBytes) {
          entry.isBodyPaused = false;
          entry.exchange.body?.resume();
          entry.exchange.sink.websocket?.resume();
        }
        return;
      }
      default:
        this.outOfOrder(frame, 'running');
    }
  }

  /**
   * Counts response body bytes against the window: a worker that ignores flow control would have
   * the front buffer whatever it sends for a client that does not read.
   */
  private takeWindow(entry: Running, bytes: number): boolean {
    entry.responseBytesUncredited += bytes;
    return entry.responseBytesUncredited <= this.windows.responseWindowBytes;
  }

  /** A frame the worker may not send now (a body before the head, a second head) or at all. */
  private outOfOrder(frame: Frame, state: string): void {
    this.onDecodeError(new ServerError('W2N_ERR_PROTO_UNEXPECTED', { type: frameTypeName(frame.type) ?? frame.type, state }));
  }

  private releaseBodyFile(entry: Running): void {
    const release = entry.releaseBodyFile;
    if (release === null) return;
    entry.releaseBodyFile = null;
    release();
  }

  /** Set by the worker, which knows its pid; SENDFILE names the worker's own descriptor. */
  procFdPath: (fd: number) => string = (fd) => `/proc/self/fd/${fd}`;

  private finish(entry: Running): void {
    this.end(entry);
  }

  private failEntry(entry: Running, failure: AppFailure): void {
    this.end(entry);
    entry.exchange.sink.fail(failure);
  }

  /**
   * Bytes from the worker that make no sense (a bad header, a payload shorter than its layout, a
   * frame it may not send): nothing more it sends is read, and the worker is replaced.
   */
  onDecodeError(error: ServerError): void {
    if (this.isBroken) return;
    this.isBroken = true;
    this.events.onProtocolError(error);
  }
}

/**
 * The worker names its error by code, read through the error table (anything it may not send is
 * the application's exception: 500). Message and traceback are the application's text and go to
 * the log: control characters escaped first.
 */
function failureOf(error: ErrorPayload): AppFailure {
  const failed = workerError('request', error.code, escapeControl(error.message));
  return { error: failed, traceback: error.traceback === undefined || failed.code === 'W2N_ERR_NOT_READY' ? undefined : escapeLines(error.traceback) };
}
