/**
 * @module Writes what the worker answers to the client's HTTP response.
 *
 * The head is committed lazily, at the first body bytes or at the end: until then a failure
 * (the app raised, the worker died, the file could not be opened) still becomes a clean 5xx.
 * Once it is committed, a failure can only cut the connection, so the client never mistakes a
 * truncated body for a whole one. The body is counted against the app's own Content-Length: one
 * that turns out longer or shorter is a 500 while nothing was sent, else a cut connection (a
 * mismatch would desynchronise keep-alive); `strictContentLength` is Node's second check. A file
 * handed over (`wsgi.file_wrapper`) that shrinks while it is sent cuts the connection too
 * (file-body.ts). Every write runs behind the front's guard.
 * On HTTP/2 there is no reason phrase, and connection-specific headers are not allowed (RFC 9113
 * §8.2.2; Node refuses to send them): the worker already drops Connection and Keep-Alive and
 * refuses Transfer-Encoding and Upgrade, and the rest are dropped here.
 *
 * Framing (RFC 9112 §6): a body the app gave whole gets a Content-Length; a streamed one without
 * it is sent chunked to HTTP/1.1 clients and delimited by closing the connection for HTTP/1.0
 * ones (Node does both). HEAD, 204 and 304 answers carry no body whatever the app wrote (Node
 * drops the bytes); a HEAD answer keeps the Content-Length the app gave. A 1xx status cannot end
 * a request, and a 204 may not carry Content-Length: the first is refused (500), the second
 * dropped. Node adds `Date`; `Server` is added here unless the app set its own.
 */
import { close, open } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { ServerError } from '../errors/index.js';
import { LogEvents } from '../observability/events.js';
import type { Logger } from '../observability/log.js';
import type { AppFailure, Exchange, ResponseHead, ResponseSink } from '../pool/exchange.js';
import { sendFileRange } from './file-body.js';
import { failResponse, type FrontGuard } from './guard.js';
import { isResponseGone } from './response-gone.js';
import type { SinkResponse } from './http2-stream-response.js';
import { countBody, requestIdHeader, requestIdOf } from './request-id.js';

const shortBodies: Record<number, string> = {
  500: 'Internal Server Error\n',
  502: 'Bad Gateway: the worker running this request died\n',
  503: 'Service Unavailable\n',
  504: 'Gateway Timeout\n',
};

/** Sends a small plain-text error answer, closing the connection when asked. */
export function sendPlainError(res: SinkResponse, statusCode: number, body: string, extraHeaders: string[] = []): void {
  const bytes = Buffer.from(body, 'utf8');
  res.writeHead(statusCode, ['Content-Type', 'text/plain; charset=utf-8', 'Content-Length', String(bytes.length), ...extraHeaders]);
  countBody(res, bytes.length);
  res.end(bytes);
}

/** The log line of a failed request (the app raised, its worker died or it timed out); `headersSent`: it can only be cut now. */
export function logFailure(log: Logger, exchange: Exchange | null, failure: AppFailure, headersSent: boolean, requestId: string): void {
  const { error } = failure;
  const facts = {
    reqId: exchange?.id ?? 0, requestId, workerId: exchange?.workerId ?? 0, method: exchange?.label.method ?? '', path: exchange?.label.path ?? '', code: error.code,
  };
  if (error.code === 'W2N_ERR_APP_EXCEPTION' || error.code === 'W2N_ERR_APP_BAD_RESPONSE') {
    LogEvents.appException(log, { ...facts, message: error.message, traceback: failure.traceback ?? '', headersSent });
  } else if (error.code === 'W2N_ERR_WORKER_DIED') {
    LogEvents.requestWorkerDied(log, facts);
  } else if (error.code === 'W2N_ERR_WORKER_TIMEOUT') {
    LogEvents.requestTimedOut(log, { ...facts, message: error.message, headersSent });
  }
}

/** Header names an HTTP/2 response must not carry (Node's isIllegalConnectionSpecificHeader, and TE). */
const connectionSpecific = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings', 'te']);

/** The app's headers without connection-specific ones (HTTP/2). */
export function http2Headers(headers: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if (!connectionSpecific.has(headers[i]!.toLowerCase())) kept.push(headers[i]!, headers[i + 1]!);
  }
  return kept;
}

export class HttpResponseSink implements ResponseSink {
  exchange: Exchange | null = null;
  private readonly isHttp2: boolean;
  private pendingHead: ResponseHead | null = null;
  private isHeadCommitted = false;
  private unacknowledgedBytes = 0;
  private isWaitingForDrain = false;
  /** The body length the head promised (Content-Length), when a body is sent at all; null: unknown. */
  private declaredLength: number | null = null;
  /** Body bytes handed to the response so far. */
  private bodyBytes = 0;
  /** Answered 500 in the app's place, or cut: whatever the worker still sends is dropped. */
  private isAbandoned = false;

  constructor(
    /** Node's response (HTTP/1, or HTTP/2 through the compatibility layer), or an HTTP/2 stream's own (http2-stream-response.ts). */
    private readonly res: SinkResponse,
    private readonly log: Logger,
    /** Added to the app's headers unless it set its own; null: none. */
    private readonly serverHeader: string | null,
    private readonly guard: FrontGuard,
  ) {
    res.strictContentLength = true;
    this.isHttp2 = res.req.httpVersionMajor === 2;
  }

  /** The X-Request-ID of the request this answers (for log lines written by others on its behalf). */
  get requestId(): string {
    return requestIdOf(this.res);
  }

  // The channel calls these from its socket's data events: a bug in them must cost this response only.
  head(head: ResponseHead, body: Buffer, isComplete: boolean): void {
    try {
      this.writeHead(head, body, isComplete);
    } catch (error: unknown) {
      this.guard.caught('sink.head', error, this.contain);
    }
  }

  body(chunk: Buffer, isLast: boolean, written?: () => void): void {
    try {
      this.writeBody(chunk, isLast, written);
    } catch (error: unknown) {
      this.guard.caught('sink.body', error, this.contain);
    }
  }

  sendFile(path: string, offset: number, length: number, onOpened: (isOpen: boolean) => void): void {
    try {
      this.streamFile(path, offset, length, onOpened);
    } catch (error: unknown) {
      this.guard.caught('sink.sendFile', error, this.contain);
    }
  }

  fail(failure: AppFailure): void {
    try {
      this.answerFailure(failure);
    } catch (error: unknown) {
      this.guard.caught('sink.fail', error, this.contain);
    }
  }

  /** After a bug: the exchange is cancelled, the response answered 500 or cut. */
  private readonly contain = (): void => {
    this.isAbandoned = true;
    this.exchange?.cancel();
    failResponse(this.res);
  };

  private writeHead(head: ResponseHead, body: Buffer, isComplete: boolean): void {
    if (this.isAbandoned) return;
    this.pendingHead = head;
    if (isComplete) {
      // An app that answers HEAD with an empty body has not said how long the GET would be.
      const isUnknownLength = body.length === 0 && this.res.req.method === 'HEAD';
      if (!isUnknownLength && !isBodyless(head.statusCode) && !hasHeader(head.headers, 'content-length')) {
        head.headers.push('Content-Length', String(body.length));
      }
      this.declaredLength = this.promisedLength(head);
      if (this.declaredLength !== null && body.length !== this.declaredLength) {
        this.breakResponse(`a body of ${body.length} bytes with Content-Length ${this.declaredLength}`);
        return;
      }
      if (this.commitHead()) {
        countBody(this.res, body.length);
        this.guard.run('response.end', () => this.res.end(body), () => this.cut('could not end the response'));
      }
    } else {
      this.declaredLength = this.promisedLength(head);
      if (body.length > 0) this.write(body);
    }
  }

  /** `written`: see ResponseSink.body; passed to the write as its callback, else never called. */
  private writeBody(chunk: Buffer, isLast: boolean, written?: () => void): void {
    if (this.isAbandoned) return;
    if (chunk.length > 0) this.write(chunk, written);
    else if (!isLast) return;
    if (!isLast || this.isAbandoned) return;
    if (this.declaredLength !== null && this.bodyBytes < this.declaredLength) {
      this.breakResponse(`the body ended after ${this.bodyBytes} of the ${this.declaredLength} bytes of its Content-Length`);
      return;
    }
    if (this.commitHead()) this.guard.run('response.end', () => this.res.end(), () => this.cut('could not end the response'));
  }

  private streamFile(path: string, offset: number, length: number, onOpened: (isOpen: boolean) => void): void {
    // The client left before the answer came (an HTTP/2 stream reset just after its HEADERS):
    // the file is not opened, so no descriptor waits for a 'close' that was already emitted.
    if (this.isAbandoned || isResponseGone(this.res)) {
      onOpened(false);
      return;
    }
    const declared = this.declaredLength;
    if (declared !== null && this.bodyBytes + length !== declared) {
      onOpened(false);
      this.breakResponse(`a file of ${length} bytes after ${this.bodyBytes} with Content-Length ${declared}`);
      return;
    }
    // HEAD sends no body: the head (with the app's Content-Length) is the whole answer.
    if (length === 0 || this.res.req.method === 'HEAD') {
      onOpened(true);
      if (this.commitHead()) this.guard.run('response.end', () => this.res.end(), () => this.cut('could not end the response'));
      return;
    }
    // The worker keeps its descriptor until told, once, whether ours is open.
    open(path, 'r', this.guard.wrap('file.open', (error: Error | null, fd: number) => {
      if (error !== null) {
        onOpened(false);
        this.fail({ error: new ServerError('W2N_ERR_APP_BAD_RESPONSE', { reason: `file hand-off failed: ${error.message}` }) });
        return;
      }
      onOpened(true);
      if (isResponseGone(this.res) || !this.commitHead()) {
        close(fd, () => undefined);
        return;
      }
      this.bodyBytes += length;
      countBody(this.res, length);
      sendFileRange(fd, offset, this.res, length, this.guard, {
        onShort: (sent, expected) => this.cut(`the file handed over (wsgi.file_wrapper) ended after ${sent} of ${expected} bytes: it shrank`),
        onError: (cause) => this.fail({ error: new ServerError('W2N_ERR_APP_BAD_RESPONSE', { reason: `file hand-off failed: ${cause.message}` }) }),
      });
    }, () => this.contain()));
  }

  private answerFailure(failure: AppFailure): void {
    const { error } = failure;
    logFailure(this.log, this.exchange, failure, this.isHeadCommitted, requestIdOf(this.res));
    if (this.isAbandoned) return;
    this.isAbandoned = true;
    if (this.isHeadCommitted || this.res.headersSent) {
      this.res.destroy();
      return;
    }
    const statusCode = error.httpStatus ?? 500;
    const extraHeaders = this.frontHeaders(statusCode === 503 ? ['Retry-After', '1'] : []);
    this.guard.run('response.error', () => sendPlainError(this.res, statusCode, shortBodies[statusCode] ?? `${statusCode}\n`, extraHeaders), () => this.res.destroy());
  }

  private write(chunk: Buffer, written?: () => void): void {
    const declared = this.declaredLength;
    if (declared !== null && this.bodyBytes + chunk.length > declared) {
      this.breakResponse(`a body longer than its Content-Length ${declared}`);
      return;
    }
    if (!this.commitHead()) return;
    this.bodyBytes += chunk.length;
    countBody(this.res, chunk.length);
    this.guard.run('response.write', () => {
      const hasRoom = written === undefined ? this.res.write(chunk) : this.res.write(chunk, () => { written(); });
      this.unacknowledgedBytes += chunk.length;
      if (hasRoom) {
        this.acknowledge();
      } else if (!this.isWaitingForDrain) {
        this.isWaitingForDrain = true;
        this.res.once('drain', () => {
          this.isWaitingForDrain = false;
          this.acknowledge();
        });
      }
    }, () => this.cut('could not write the response'));
  }

  private acknowledge(): void {
    const bytes = this.unacknowledgedBytes;
    this.unacknowledgedBytes = 0;
    if (bytes > 0) this.exchange?.acknowledge(bytes);
  }

  /**
   * The body the head promises, when one is sent: Content-Length's value, or null (none, HEAD,
   * 1xx/204/304: Node sends no body whatever the app writes).
   */
  private promisedLength(head: ResponseHead): number | null {
    if (this.res.req.method === 'HEAD' || isBodyless(head.statusCode)) return null;
    const headers = head.headers;
    for (let i = 0; i < headers.length; i += 2) {
      if (headers[i]!.toLowerCase() === 'content-length') return /^\d+$/.test(headers[i + 1]!) ? Number(headers[i + 1]) : null;
    }
    return null;
  }

  /**
   * The app's body does not match its own Content-Length: a clean 500 while nothing of the answer
   * left, else the connection is cut (the client must not take a short body for a whole one).
   */
  private breakResponse(reason: string): void {
    if (this.isHeadCommitted) {
      this.cut(`the application's body does not match its head: ${reason}`);
      return;
    }
    LogEvents.badResponse(this.log, { reqId: this.exchange?.id ?? 0, requestId: requestIdOf(this.res), reason });
    this.isAbandoned = true;
    this.pendingHead = null;
    this.exchange?.cancel();
    this.guard.run('response.error', () => sendPlainError(this.res, 500, shortBodies[500]!, this.frontHeaders([])), () => this.res.destroy());
  }

  /** The answer started and cannot be finished as its head said: cut, never reused. */
  private cut(reason: string): void {
    if (this.isAbandoned) return;
    this.isAbandoned = true;
    const ex = this.exchange;
    LogEvents.responseCut(this.log, { reqId: ex?.id ?? 0, requestId: requestIdOf(this.res), method: ex?.label.method ?? '', path: ex?.label.path ?? '', reason });
    ex?.cancel();
    this.res.destroy();
  }

  /** Sends the head if not yet sent. False if the head is unsendable (answered 500 instead). */
  private commitHead(): boolean {
    if (this.isHeadCommitted) return true;
    const head = this.pendingHead;
    if (head === null || this.res.destroyed || this.isAbandoned) return false;
    try {
      if (head.statusCode < 200) throw new Error(`status ${head.statusCode}: a 1xx status cannot be the final answer to a request`);
      const headers = head.headers;
      if (head.statusCode === 204) removeHeader(headers, 'content-length');
      if (this.serverHeader !== null && !hasHeader(headers, 'server')) headers.push('Server', this.serverHeader);
      // The front's id, never the application's own: the logs and the answer must agree.
      removeHeader(headers, 'x-request-id');
      headers.push(...requestIdHeader(this.res));
      // Node checks every name (a token) and value (no CR, LF, NUL; latin-1) and throws on a bad one.
      if (this.isHttp2) this.res.writeHead(head.statusCode, http2Headers(headers));
      else (this.res as ServerResponse).writeHead(head.statusCode, head.reason, headers);
      this.isHeadCommitted = true;
      return true;
    } catch (cause: unknown) {
      const reason = cause instanceof Error ? cause.message : String(cause);
      this.res.removeHeader('content-length');
      this.breakResponse(reason);
      return false;
    }
  }

  /** Headers of an answer the front makes in the app's place. */
  private frontHeaders(headers: string[]): string[] {
    if (this.serverHeader !== null) headers.push('Server', this.serverHeader);
    headers.push(...requestIdHeader(this.res));
    return headers;
  }

}

function hasHeader(headers: readonly string[], lowerName: string): boolean {
  for (let i = 0; i < headers.length; i += 2) if (headers[i]!.toLowerCase() === lowerName) return true;
  return false;
}

function removeHeader(headers: string[], lowerName: string): void {
  for (let i = headers.length - 2; i >= 0; i -= 2) if (headers[i]!.toLowerCase() === lowerName) headers.splice(i, 2);
}

function isBodyless(statusCode: number): boolean {
  return statusCode === 204 || statusCode === 304 || statusCode < 200;
}
