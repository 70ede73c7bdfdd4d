/**
 * @module Refusing a client: the one place that answers bad or unwelcome input, logs it, counts it.
 *
 * Every refusal is logged once (`client.error`) and counted (`w2n_client_rejections_total`), and
 * the connection is closed after the answer: once the framing of a request is in doubt, the bytes
 * after it cannot be trusted to start the next request (that is what request smuggling uses).
 *
 * Two ways in:
 * - `refuseConnection`: a whole answer written straight onto the socket, for when no
 *   ServerResponse exists (Node's `clientError`: bad framing, head too large, too slow; and a
 *   connection over `--max-connections`). It is safe to write raw bytes only while no response of
 *   this connection has started, which is checked first (as Node's own default does).
 * - `refuseRequest`: the answer goes through the ServerResponse, so it keeps its place after the
 *   answers to earlier pipelined requests; the connection is then marked, and requests that Node
 *   already parsed behind the refused one on it are dropped before they reach the application
 *   (`isClosing`).
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { errorTable, ServerError, type ErrorCode, type ErrorDetails } from '../errors/index.js';
import { LogEvents } from '../observability/events.js';
import type { Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import { isRequestLineOverflow } from './request-checks.js';
import { FrontGuard } from './guard.js';
import { countBody, requestIdHeader, requestIdOf } from './request-id.js';

/** How long a refused connection may stay half-closed, reading and dropping what the client still sends. */
const LINGER_MS = 2_000;

/** Node's `clientError` argument: llhttp's code, the chunk being parsed and where it failed. */
export type ClientError = Error & { code?: string; rawPacket?: Buffer; bytesParsed?: number };

/** What Node keeps on an HTTP connection's socket: the response being written, if any. */
type HttpSocket = Duplex & { remoteAddress?: string; _httpMessage?: ServerResponse | null; alpnProtocol?: string | false };

export interface RejectionOptions {
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Value of the `Server` header, null for none. */
  readonly serverHeader: string | null;
  /** `--max-header-size`: what a request line that overflowed the whole head is said to exceed. */
  readonly maxHeaderSize: number;
}

export class ClientRejections {
  /** Connections whose last answer is a refusal: whatever else they sent is dropped. */
  readonly #closing = new WeakSet<object>();

  private readonly serverHeader: string | null;
  /**
   * The front's guard against its own bugs (guard.ts), one for the whole front. It lives here
   * because every listener, handler and the connection limit already get the rejections.
   */
  readonly guard: FrontGuard;

  constructor(private readonly options: RejectionOptions) {
    this.serverHeader = options.serverHeader;
    this.guard = new FrontGuard(options.log, options.metrics);
  }

  /** True when a request arrived on a connection already refused: drop it, answer nothing. */
  isClosing(socket: object): boolean {
    return this.#closing.has(socket);
  }

  /** A request whose head is refused (request-checks.ts): answered in order, then the connection closes. */
  refuseRequest(req: IncomingMessage, res: ServerResponse, code: ErrorCode, details: ErrorDetails): void {
    const error = this.#record(code, details, req.socket.remoteAddress, requestIdOf(res));
    this.#closing.add(req.socket);
    res.shouldKeepAlive = false;
    const { status, body } = answerOf(error);
    const headers = ['Content-Type', 'text/plain; charset=utf-8', 'Content-Length', String(Buffer.byteLength(body)), ...requestIdHeader(res)];
    if (this.serverHeader !== null) headers.push('Server', this.serverHeader);
    res.writeHead(status, headers);
    countBody(res, Buffer.byteLength(body));
    res.end(body);
  }

  /** Node's `clientError`: the parser failed, the head was too large, or the client too slow. */
  onClientError(error: ClientError, socket: Duplex): void {
    const httpSocket = socket as HttpSocket;
    const llhttpCode = error.code ?? '';
    const inFlight = httpSocket._httpMessage ?? null;
    // More bytes after a refusal, or after a request that said `Connection: close`: the answer on
    // its way closes the connection; the bytes are dropped.
    if (this.#closing.has(socket) || (llhttpCode === 'HPE_CLOSED_CONNECTION' && inFlight !== null)) return;
    if (llhttpCode === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const code = clientErrorCode(error);
    // The parser's own words (llhttp's code and message) go to the log, never to the client.
    const details = code === 'W2N_ERR_CLIENT_URI_TOO_LONG' ? { limit: this.options.maxHeaderSize } : { reason: `${llhttpCode} ${error.message}` };
    if (inFlight?.headersSent === true) {
      // An answer is half written (e.g. a bad chunk in a body the application is streaming back): only a cut is honest.
      this.#record(code, details, httpSocket.remoteAddress);
      socket.destroy();
      return;
    }
    this.refuseConnection(socket, code, details, '', PUBLIC_REASONS[code]);
  }

  /** A connection refused where no answer can be read (no TLS yet, HTTP/2): logged, counted, destroyed. */
  cutConnection(socket: Duplex, code: ErrorCode, details: ErrorDetails): void {
    const httpSocket = socket as HttpSocket;
    this.#record(code, details, httpSocket.remoteAddress);
    this.#closing.add(socket);
    socket.on('error', ignore);
    socket.destroy();
  }

  /**
   * Writes a whole answer onto the socket, closes our side, and drops the connection soon after.
   * `publicReason`: what the answer's body says, when the details are not for the client's eyes.
   */
  refuseConnection(socket: Duplex, code: ErrorCode, details: ErrorDetails, extraHeaders = '', publicReason?: string): void {
    const httpSocket = socket as HttpSocket;
    const error = this.#record(code, details, httpSocket.remoteAddress);
    this.#closing.add(socket);
    socket.on('error', ignore);
    // An HTTP/2 connection cannot carry an HTTP/1.1 answer.
    if (httpSocket.alpnProtocol === 'h2' || !socket.writable) {
      socket.destroy();
      return;
    }
    const { status, body } = answerOf(error, publicReason);
    const server = this.serverHeader === null ? '' : `Server: ${this.serverHeader}\r\n`;
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nDate: ${new Date().toUTCString()}\r\n${server}`
      + `Connection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`
      + `${extraHeaders}\r\n${body}`);
    // Closing at once with unread bytes would make the kernel send a reset, which can destroy the
    // answer before the client reads it; so linger a little (a client normally closes first).
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  }

  #record(code: ErrorCode, details: ErrorDetails, remoteAddr: string | undefined, requestId?: string): ServerError {
    const error = new ServerError(code, details);
    LogEvents.clientError(this.options.log, { code, remoteAddr, reason: error.message, requestId });
    this.options.metrics.clientRejected(code.replace(/^W2N_ERR_(?:CLIENT_)?/, '').toLowerCase());
    return error;
  }
}

function clientErrorCode(error: ClientError): ErrorCode {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      return isRequestLineOverflow(error.rawPacket, error.bytesParsed) ? 'W2N_ERR_CLIENT_URI_TOO_LONG' : 'W2N_ERR_CLIENT_HEADERS_TOO_LARGE';
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return 'W2N_ERR_CLIENT_TIMEOUT';
    default:
      return 'W2N_ERR_CLIENT_BAD_REQUEST';
  }
}

/** What the body of a refusal of Node's `clientError` says (its details name parser internals). */
const PUBLIC_REASONS: Partial<Record<ErrorCode, string>> = {
  W2N_ERR_CLIENT_BAD_REQUEST: 'malformed request',
  W2N_ERR_CLIENT_TIMEOUT: 'the request did not arrive in time',
  W2N_ERR_CLIENT_HEADERS_TOO_LARGE: 'request headers too large',
};

/** Status and a one-line body: `Bad Request: more than one Host header`. */
function answerOf(error: ServerError, publicReason?: string): { status: number; body: string } {
  const status = error.httpStatus ?? errorTable.W2N_ERR_CLIENT_BAD_REQUEST.httpStatus;
  const reason = publicReason ?? error.details.reason;
  return { status, body: `${STATUS_CODES[status] ?? status}: ${typeof reason === 'string' ? reason : error.message}\n` };
}

function ignore(): void {}
