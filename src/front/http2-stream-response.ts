/**
 * @module The response of an HTTP/2 application request answered on the raw Http2Stream.
 *
 * Node's compatibility layer makes an Http2ServerRequest and an Http2ServerResponse per stream,
 * each with its listeners on the stream, and ends every answer with an empty DATA frame after
 * `waitForTrailers`. For an application request without a body (handler.ts takes those before
 * the layer sees them) this is the response instead: the few members of Http2ServerResponse that
 * the response sink (response-sink.ts), the file hand-off (file-body.ts), the access line,
 * the metrics and the helpers of response-gone.ts, answer-gate.ts, guard.ts and request-id.ts
 * use, with the same behaviour, written straight onto the stream:
 * - `writeHead(status, [name, value, …])`: names trimmed and lower-cased, repeated names sent as
 *   repeated fields, as the compatibility layer does; every name must be a token and every value
 *   free of CR, LF and NUL (Node's `validateHeaderName`/`validateHeaderValue`: they throw, and the
 *   sink answers 500 while nothing was sent); Node's own checks of `respond()` (a single-value
 *   header repeated, a connection-specific one) throw as before. A stream already closed is left.
 * - HEAD, 204, 205 and 304: `respond()` ends the stream with the head; body bytes written after
 *   it are dropped (as Node drops them for HTTP/1), never written after the end.
 * - `write`/`end`/`destroy`, `headersSent`, `writableFinished`, 'drain', 'finish' and 'close'
 *   are the stream's own; `destroyed` is the stream's too (the compatibility response has none);
 *   `writableEnded` is ours (response-gone.ts isAnswerComplete: whether we ended the answer).
 */
import { validateHeaderName, validateHeaderValue, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { Http2ServerResponse, ServerHttp2Stream } from 'node:http2';

/** Any response the front answers on: HTTP/1.x, HTTP/2 through Node's compatibility layer, HTTP/2 on the raw stream. */
export type AnyResponse = ServerResponse | Http2ServerResponse | Http2StreamResponse;
/** A response the sink and the file hand-off write (a compatibility response is passed as the ServerResponse it mimics). */
export type SinkResponse = ServerResponse | Http2StreamResponse;

/** The request facts readers of `res.req` use (method, version, headers for the access line). */
export interface Http2StreamRequest {
  readonly method: string;
  readonly url: string;
  readonly httpVersion: '2.0';
  readonly httpVersionMajor: 2;
  readonly httpVersionMinor: 0;
  readonly headers: IncomingHttpHeaders;
}

export class Http2StreamResponse {
  statusCode = 200;
  /** The sink sets it; the sink's own count of the body against Content-Length is the check here. */
  strictContentLength = false;
  readonly req: Http2StreamRequest;
  /** The head as sent (getHeader reads it for the access line of an answer made without a count). */
  private sentHead: OutgoingHttpHeaders | null = null;
  /**
   * Ended by us (`end()`, or a head that ends the stream), as the compatibility response's own
   * `writableEnded`: the stream's says true too when Node ended it with its session, nothing answered.
   */
  private isEnded = false;

  constructor(readonly stream: ServerHttp2Stream, method: string, target: string, headers: IncomingHttpHeaders) {
    this.req = { method, url: target, httpVersion: '2.0', httpVersionMajor: 2, httpVersionMinor: 0, headers };
  }

  get headersSent(): boolean {
    return this.stream.headersSent;
  }

  get destroyed(): boolean {
    return this.stream.destroyed;
  }

  get writableEnded(): boolean {
    return this.isEnded;
  }

  get writableFinished(): boolean {
    return this.stream.writableFinished;
  }

  get writableLength(): number {
    return this.stream.writableLength;
  }

  writeHead(statusCode: number, headers: readonly string[]): this {
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return this;
    const head: OutgoingHttpHeaders = { ':status': statusCode };
    for (let i = 0; i + 1 < headers.length; i += 2) {
      const name = headers[i]!.trim().toLowerCase();
      const value = headers[i + 1]!;
      validateHeaderName(name);
      validateHeaderValue(name, value);
      const previous = head[name];
      if (previous === undefined) head[name] = value;
      else if (Array.isArray(previous)) previous.push(value);
      else head[name] = [String(previous), value];
    }
    stream.respond(head);
    this.statusCode = statusCode;
    this.sentHead = head;
    // HEAD, 204, 205, 304: respond() ended the stream with the head, which is the whole answer.
    if (stream.writableEnded) this.isEnded = true;
    return this;
  }

  write(chunk: Buffer, written?: (error?: Error | null) => void): boolean {
    // Ended by its head (HEAD, 204, 205, 304): no body goes out.
    if (this.stream.writableEnded) return true;
    return written === undefined ? this.stream.write(chunk) : this.stream.write(chunk, written);
  }

  end(chunk?: Buffer): this {
    const stream = this.stream;
    if (stream.writableEnded || stream.destroyed) return this;
    this.isEnded = true;
    if (chunk === undefined || chunk.length === 0) stream.end();
    else stream.end(chunk);
    return this;
  }

  destroy(error?: Error): void {
    this.stream.destroy(error);
  }

  getHeader(name: string): string | number | string[] | undefined {
    return this.sentHead?.[name.toLowerCase()];
  }

  /** The sink removes a Content-Length it set before a head Node refused: nothing was sent. */
  removeHeader(_name: string): void {}

  on(event: 'close' | 'drain' | 'finish', listener: () => void): this {
    this.stream.on(event, listener);
    return this;
  }

  once(event: 'close' | 'drain' | 'finish', listener: () => void): this {
    this.stream.once(event, listener);
    return this;
  }

  off(event: 'close' | 'drain' | 'finish', listener: () => void): this {
    this.stream.off(event, listener);
    return this;
  }
}
