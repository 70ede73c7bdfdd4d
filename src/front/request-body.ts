/**
 * @module How a request's body reaches the worker: size limit, `100 Continue`, chunked bodies spooled or streamed.
 *
 * - `Content-Length` above --max-body: 413 before any of the body is read, never a 100, and a
 *   lingering close (lingering-close.ts).
 * - `Content-Length` bodies stream to the worker under the channel's flow control, as they
 *   arrive. With `Expect: 100-continue`, the 100 goes out when the worker starts reading (the
 *   stream is resumed by the channel, i.e. the request was dispatched); a request answered
 *   before that (503 from the queue, say) closes its connection, since the client may or may
 *   not send the body it was never asked for.
 * - Bodies without a length (chunked): with `spool` (the default) they are read whole first
 *   (body-spool.ts; the 100, if expected, goes out at once since the front reads it now), 413
 *   the moment they cross --max-body, and the request is dispatched with CONTENT_LENGTH set and
 *   HTTP_TRANSFER_ENCODING gone. With `stream` they pass through as they arrive, counted: one
 *   that crosses --max-body is cancelled in the worker and answered 413 if no answer started.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { ServerError } from '../errors/index.js';
import type { BodyFile } from '../pool/exchange.js';
import { LogEvents } from '../observability/events.js';
import type { Logger } from '../observability/log.js';
import { spoolBody, type SpooledBody } from './body-spool.js';
import { withContentLength } from './environ.js';
import { answerAndClose } from './lingering-close.js';
import { requestIdOf } from './request-id.js';

export interface BodyPolicy {
  /** --max-body */
  maxBytes: number;
  /** --body-buffer-size */
  memoryBytes: number;
  /** --spool-dir */
  spoolDir: string;
  /** --chunked-input */
  chunkedInput: 'spool' | 'stream';
}

/**
 * Hands the request to the pool: its environ pairs, its body stream, and the file that holds
 * the same body whole when the worker may read it itself (a spooled body on disk), else null.
 */
export type StartExchange = (pairs: string[], body: Readable, file: BodyFile | null) => void;

/** As Node tests it before emitting 'checkContinue'. */
const EXPECT_CONTINUE = /(?:^|\W)100-continue(?:$|\W)/i;

export class RequestBodies {
  constructor(private readonly policy: BodyPolicy, private readonly log: Logger) {}

  /**
   * For a request that has a body: calls `start` when it may be dispatched (now, or once the
   * body is spooled), or answers the request itself (413, 500) and never calls `start`.
   */
  receive(req: IncomingMessage, res: ServerResponse, pairs: string[], start: StartExchange): void {
    // HTTP/1.0 has no 100 Continue; HTTP/2 has it (a HEADERS frame with :status 100).
    const isVersionWithContinue = req.httpVersionMajor === 2 || (req.httpVersionMajor === 1 && req.httpVersionMinor >= 1);
    const expectsContinue = isVersionWithContinue && EXPECT_CONTINUE.test(req.headers.expect ?? '');
    const declared = req.headers['content-length'];
    if (declared !== undefined) {
      const length = Number(declared);
      if (length > this.policy.maxBytes) {
        this.refuseTooLarge(req, res, `Content-Length ${declared}`);
        return;
      }
      if (expectsContinue) continueWhenRead(req, res);
      start(pairs, req, null);
      return;
    }
    if (this.policy.chunkedInput === 'spool') {
      if (expectsContinue) res.writeContinue();
      this.spool(req, res, pairs, start);
      return;
    }
    const body = new LimitedBody(req, this.policy.maxBytes, (received) => {
      this.refuseTooLarge(req, res, `chunked body reached ${received} bytes`);
    });
    if (expectsContinue) continueWhenRead(body, res);
    start(pairs, body, null);
  }

  private spool(req: IncomingMessage, res: ServerResponse, pairs: string[], start: StartExchange): void {
    let isClosed = false;
    let spooled: SpooledBody | null = null;
    // Whatever ends the response (finished, client gone, worker crash, server stop) frees the spool.
    res.once('close', () => {
      isClosed = true;
      spooled?.dispose();
    });
    const { maxBytes, memoryBytes, spoolDir } = this.policy;
    void spoolBody(req, { maxBytes, memoryBytes, dir: spoolDir }).then((outcome) => {
      switch (outcome.kind) {
        case 'complete':
          if (isClosed) {
            outcome.body.dispose();
            return;
          }
          spooled = outcome.body;
          start(withContentLength(pairs, outcome.body.size), outcome.body.stream(), outcome.body.isOnDisk ? outcome.body : null);
          return;
        case 'too-large':
          this.refuseTooLarge(req, res, `chunked body reached ${outcome.receivedBytes} bytes`);
          return;
        case 'failed': {
          const error = new ServerError('W2N_ERR_BODY_SPOOL', { folder: spoolDir, reason: outcome.reason });
          LogEvents.bodySpoolFailed(this.log, { code: error.code, folder: spoolDir, reason: outcome.reason });
          answerAndClose(req, res, 500, 'Internal Server Error\n');
          return;
        }
        case 'aborted':
          return; // the client left: nobody to answer; the spool released itself
      }
    });
  }

  private refuseTooLarge(req: IncomingMessage, res: ServerResponse, reason: string): void {
    const error = new ServerError('W2N_ERR_CLIENT_BODY_TOO_LARGE', { limit: this.policy.maxBytes, reason });
    LogEvents.clientError(this.log, { code: error.code, remoteAddr: req.socket.remoteAddress, reason: error.message, requestId: requestIdOf(res) });
    answerAndClose(req, res, 413, `Payload Too Large: the request body is limited to ${this.policy.maxBytes} bytes\n`);
  }
}

/**
 * Sends `100 Continue` when `body` starts flowing (the channel attached to it: the request is
 * running). Until then the response would close the connection: answered early, the client may
 * or may not send the body, and a kept-alive connection could not tell it from the next request.
 */
function continueWhenRead(body: Readable, res: ServerResponse): void {
  const keepAlive = res.shouldKeepAlive;
  res.shouldKeepAlive = false;
  body.once('resume', () => {
    if (res.headersSent || res.writableEnded || res.destroyed) return;
    res.writeContinue();
    res.shouldKeepAlive = keepAlive;
  });
}

/**
 * A chunked body passed through as it arrives (`--chunked-input stream`), counted against
 * --max-body. It attaches to the request only when first read, so nothing flows before the
 * request is dispatched; it follows the consumer's pace (pausing the request when full).
 */
class LimitedBody extends Readable {
  private received = 0;
  private isAttached = false;

  constructor(
    private readonly source: IncomingMessage,
    private readonly maxBytes: number,
    private readonly onTooLarge: (receivedBytes: number) => void,
  ) {
    super({ highWaterMark: 64 * 1024 });
    // The channel listens for errors while it runs the request; an error after it let go (or
    // before it started) must not become an uncaught exception.
    this.on('error', () => undefined);
  }

  override _read(): void {
    if (this.isAttached) {
      this.source.resume();
      return;
    }
    this.isAttached = true;
    this.source.on('data', this.onData);
    this.source.once('end', () => this.push(null));
    this.source.once('aborted', this.onAbort);
    this.source.once('error', this.onAbort);
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.destroyed) return;
    this.received += chunk.length;
    if (this.received > this.maxBytes) {
      this.source.off('data', this.onData);
      // The channel sees the error and cancels the request in the worker.
      this.destroy(new Error('request body larger than --max-body'));
      this.onTooLarge(this.received);
      return;
    }
    if (!this.push(chunk)) this.source.pause();
  };

  private readonly onAbort = (): void => {
    this.destroy(new Error('client aborted the request body'));
  };
}
