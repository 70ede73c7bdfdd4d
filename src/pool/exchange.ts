/**
 * @module One request's life on the pool side: what the front hands in, and where answers go.
 *
 * The front builds an Exchange (environ bytes, an optional body stream, a ResponseSink) and gives
 * it to the dispatcher; from then on the pool drives it: queue → a worker's channel → done. The
 * front never sees workers or frames, only the ResponseSink calls, and it tells the pool two
 * things back: `acknowledge(n)` when n response bytes have drained to the client (flow control),
 * and `cancel()` when the client went away.
 */
import type { Readable } from 'node:stream';
import type { ServerError } from '../errors/index.js';
import type { ResponseHead } from '../protocol/payloads.js';

/** What a RESPONSE frame's head decodes to (protocol/payloads.ts). */
export type { ResponseHead };

export interface AppFailure {
  error: ServerError;
  /** Python traceback, when the application raised. */
  traceback?: string | undefined;
}

/** Implemented by the front: the pool calls these, in this order, at most once each except body(). */
export interface ResponseSink {
  /** The head, and the first body bytes. `isComplete`: nothing follows. */
  head(head: ResponseHead, body: Buffer, isComplete: boolean): void;
  /**
   * `written`, when given: `chunk` is a view of a buffer the channel reads into again once every
   * such view's `written` was called. Call it once the chunk is no longer referred to (its write's
   * callback), or never (the buffer is then not reused); never before.
   */
  body(chunk: Buffer, isLast: boolean, written?: () => void): void;
  /** Stream `length` bytes from `offset` of the file at `path` (a /proc fd link); report when open. */
  sendFile(path: string, offset: number, length: number, onOpened: (isOpen: boolean) => void): void;
  /** The request failed: 5xx if no head was sent, else the connection must be cut. */
  fail(failure: AppFailure): void;
  /**
   * Present when the request is a WebSocket handshake the front can complete: the REQUEST goes
   * out with FLAG_UPGRADE, and the application may accept it (WS_ACCEPT) instead of answering.
   */
  readonly websocket?: WebSocketSink;
}

/**
 * The front's half of an application's WebSocket (docs/protocol.md, "WebSockets"): the pool calls
 * these once the application accepted the handshake; `link` is how the front talks back.
 */
export interface WebSocketSink {
  /** WS_ACCEPT: complete the handshake (101) with this subprotocol (null: none). */
  accept(protocol: string | null, link: WebSocketLink): void;
  /** WS_MESSAGE from the application: send it to the client. */
  message(data: Buffer, isBinary: boolean): void;
  /** WS_CLOSE from the application (`isLast`: its handler returned; the exchange is over). */
  close(code: number, reason: string, isLast: boolean): void;
  /** The worker has not credited enough of the client's messages: stop reading the client. */
  pause(): void;
  resume(): void;
}

/** What the front tells the pool about an accepted WebSocket. */
export interface WebSocketLink {
  /** A message from the client, for the application. */
  message(data: Buffer, isBinary: boolean): void;
  /** The client's side closed (or the front closed it): the application's receive() gets None. */
  closed(code: number, reason: string): void;
  /** n bytes of the application's messages were written to the client: credit them. */
  acknowledge(bytes: number): void;
}

/**
 * A request body already whole in a file the front holds open (a spooled chunked body): the
 * worker may open it itself (BODY_FILE, docs/protocol.md) instead of being sent its bytes.
 */
export interface BodyFile {
  /** The front's descriptor of the file, and the body's length from offset 0. */
  readonly fd: number;
  readonly size: number;
  /** The file's device and inode: the worker checks that what it opened is this file. */
  readonly dev: bigint;
  readonly ino: bigint;
  /**
   * Keeps the descriptor open (whatever else releases the body) until the returned function is
   * called: while the worker may still be opening it, its number must not name another file.
   */
  retain(): () => void;
}

export type ExchangeState = 'new' | 'queued' | 'running' | 'done';

export interface RequestLabel {
  method: string;
  path: string;
}

/** Hooks the channel that runs the exchange installs, so the front can talk back. */
export interface ExchangeControl {
  acknowledge(bytes: number): void;
  cancel(): void;
}

export class Exchange {
  state: ExchangeState = 'new';
  /** Set by the channel that runs it. */
  id = 0;
  workerId = 0;
  queuedAt = 0;
  private control: ExchangeControl | null = null;
  private isCancelledFlag = false;
  /** Called once when the exchange leaves the pool (done or cancelled); set by the dispatcher. */
  onSettled: (() => void) | null = null;

  constructor(
    /** REQUEST payload: the environ pairs, encoded (protocol/encode.ts encodeStrings). */
    readonly environ: Buffer,
    /** Request body, or null when the request has none. */
    readonly body: Readable | null,
    readonly sink: ResponseSink,
    readonly label: RequestLabel,
    /** The body's file, when the worker may read it itself (`body` streams the same bytes otherwise). */
    readonly bodyFile: BodyFile | null = null,
  ) {}

  get isCancelled(): boolean {
    return this.isCancelledFlag;
  }

  attach(control: ExchangeControl): void {
    this.control = control;
  }

  /** The front: n response bytes were handed to the client and drained. */
  acknowledge(bytes: number): void {
    this.control?.acknowledge(bytes);
  }

  /**
   * The front: the client went away; stop the work. Queued, it never reaches Python; running,
   * the worker is told to stop it, and it keeps its slot (`-w`) until the worker's last word.
   */
  cancel(): void {
    if (this.isCancelledFlag || this.state === 'done') return;
    this.isCancelledFlag = true;
    if (this.state === 'running') this.control?.cancel();
    else this.settle();
  }

  /** The pool: nothing more will happen for this exchange. */
  settle(): void {
    if (this.state === 'done') return;
    this.state = 'done';
    this.control = null;
    const onSettled = this.onSettled;
    this.onSettled = null;
    onSettled?.();
  }
}
