/**
 * @module HTTP request → built-in answer or an Exchange for the worker pool; access log.
 *
 * The front talks to the pool only through `RequestDispatcher` (dispatch + readiness): it never
 * sees workers, processes or frames. HTTP/2 requests arrive here too, through Node's
 * compatibility API (Http2ServerRequest/Response, typed as their HTTP/1 counterparts): the only
 * difference handled here is that an HTTP/2 body needs no Content-Length.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Http2ServerRequest } from 'node:http2';
import type { Readable } from 'node:stream';
import type { Logger } from '../observability/log.js';
import type { ErrorCode, ErrorDetails } from '../errors/index.js';
import type { AccessLog } from '../observability/access-log.js';
import { formatAccessLine, type AccessLineFormatter, type RequestAccessEntry } from '../observability/access-formats.js';
import { encodeStrings } from '../protocol/encode.js';
import { Exchange, type BodyFile } from '../pool/exchange.js';
import { buildEnviron, type ListenerFacts } from './environ.js';
import { clientCertificatePairs } from './client-certificate.js';
import { HttpResponseSink } from './response-sink.js';
import { Http2StreamResponse, type SinkResponse } from './http2-stream-response.js';
import { failResponse } from './guard.js';
import { answerHealth, HEALTH_PATH } from './builtins/health.js';
import type { StaticHandler } from './static/serve.js';
import { createHttp2StaticTaker, type Http2StreamTaker } from './http2-static.js';
import { answerMetrics, isLoopback, METRICS_PATH } from './builtins/metrics.js';
import { StatusPage } from './builtins/status.js';
import type { Metrics } from '../observability/metrics.js';
import type { ClientRejections } from './client-errors.js';
import { checkHttpVersion, checkRequestHead, type HeadLimits } from './request-checks.js';
import type { RequestBodies } from './request-body.js';
import { whenConnectionFree } from './answer-gate.js';
import { isAnswerComplete, isResponseGone } from './response-gone.js';
import { originalTarget } from './raw-target-bytes.js';
import { bodyBytesOf, newRequestId, noteRequestId } from './request-id.js';
import { closeResponse, type ResponseCloseWork } from './response-close.js';
import type { AppWebSockets } from './websocket/app-sockets.js';

export interface RequestDispatcher {
  dispatch(exchange: Exchange): void;
  readonly isReady: boolean;
}

export interface HandlerOptions {
  pool: RequestDispatcher;
  log: Logger;
  accessLog: AccessLog | null;
  /** The access log's line format (`--access-log-format`). */
  formatAccessLine: AccessLineFormatter;
  /** True once a graceful stop began: answers carry `Connection: close`. */
  isDraining: () => boolean;
  /** Told when each response starts and when it is closed (finished or cut): in-flight count. */
  onResponseOpened: () => void;
  onResponseClosed: () => void;
  /** GET /status and its data (front/builtins/status.ts). */
  statusPage: StatusPage | null;
  /** web2py static files served by the front (null when offload is off). */
  staticHandler: StaticHandler | null;
  metrics: Metrics;
  /** Refuses bad heads (and drops what follows them on their connection); logs and counts. */
  rejections: ClientRejections;
  headLimits: HeadLimits;
  /** `Server` header of every response (the application's own wins); null for none. */
  serverHeader: string | null;
  /** Body limits, 100-continue, chunked bodies spooled or streamed. */
  bodies: RequestBodies;
  /** The applications' WebSockets: the sink of an upgrade request they took (front/websocket/app-sockets.ts). */
  appWebSockets: AppWebSockets | null;
  /** The realtime hub's paths (front/realtime/start.ts): true when it served the request; null: hub off. */
  realtime: ((req: IncomingMessage, res: ServerResponse, target: string, remoteAddr: string) => boolean) | null;
  /** Whether `realtime` would take this target (under its prefix); absent: nothing is. */
  realtimeOwns?: (target: string) => boolean;
}

export interface RequestHandler {
  (req: IncomingMessage, res: ServerResponse): void;
  /** On an HTTP/2 listener, put in front of Node's compatibility layer (listeners.ts): cached static files, application requests without a body. */
  readonly takeHttp2Stream?: Http2StreamTaker;
}

/** When the response's request reached the handler (performance.now()): its latency for the status page. */
const STARTED_AT = Symbol('startedAt');
type TimedResponse = ServerResponse & { [STARTED_AT]?: number };

export function createRequestHandler(listener: ListenerFacts, options: HandlerOptions): RequestHandler {
  const { pool, log, accessLog, onResponseOpened, staticHandler, metrics, rejections, headLimits, serverHeader, bodies, statusPage } = options;
  const { guard } = rejections;
  // web2py's line has no Referer nor User-Agent: its requests never build Node's header object for it.
  const formatLine = options.formatAccessLine;
  const readsHeaders = formatLine !== formatAccessLine;
  // Answers made by the front itself carry the Server header; the application's get it in the sink.
  const stampServer = serverHeader === null ? (): void => {} : (res: ServerResponse): void => { res.setHeader('Server', serverHeader); };
  const closeWork: ResponseCloseWork = { metrics, onResponseClosed: options.onResponseClosed, guard };
  // One listener shared by every answer with nothing of its own to do at close (the front's own
  // answers, refusals, static files without an access line): no closure a request.
  const onResponseClosed = function (this: TimedResponse): void {
    closeResponse(closeWork, 'response.close', this.statusCode, this[STARTED_AT] ?? performance.now(), null, null, null);
  };
  const refuse = refuser(rejections, onResponseClosed);
  const handle = (req: IncomingMessage, res: TimedResponse): void => {
    const socket = req.socket;
    // Requests Node parsed behind a refused one on the same connection reach nothing.
    if (rejections.isClosing(socket)) return;
    // An HTTP/2 stream refused or reset before its request got here has nobody to answer.
    if (isResponseGone(res)) return;
    const startedAt = performance.now();
    res[STARTED_AT] = startedAt;
    onResponseOpened();
    if (options.isDraining()) res.shouldKeepAlive = false;
    // As the client sent it: raw bytes ≥ 0x80 come back here (raw-target-bytes.ts).
    const target = originalTarget(req);

    // `GET / HTTP/2.0` on an HTTP/1.x connection is not an HTTP/2 request: 505, closed.
    const refusal = checkHttpVersion(req.httpVersionMajor, req.httpVersionMinor, isHttp2Request(req)) ?? checkRequestHead(req, headLimits);
    if (refusal !== null) {
      refuse(res, refusal.code, refusal.details);
      return;
    }
    if (target === HEALTH_PATH) {
      res.on('close', onResponseClosed);
      stampServer(res);
      answerHealth(res, pool.isReady && !options.isDraining());
      return;
    }
    const environ = buildEnviron({
      method: req.method ?? 'GET',
      target,
      httpVersion: req.httpVersion,
      rawHeaders: req.rawHeaders,
      remoteAddress: socket.remoteAddress,
      remotePort: socket.remotePort,
    }, listener);

    if ('badRequest' in environ) {
      refuse(res, 'W2N_ERR_CLIENT_BAD_REQUEST', { reason: environ.badRequest });
      return;
    }
    noteRequestId(res, environ.requestId);
    const writeAccessLine = accessLog === null ? null : () => accessLog.write(formatLine(accessEntry(req, res, target, environ, startedAt, readsHeaders)));
    // The client as resolved: through a trusted proxy on 127.0.0.1, the world is not loopback.
    if (statusPage !== null && StatusPage.owns(environ.pathInfo) && answerStatus(statusPage, req, res, environ, () => {
      res.on('close', onResponseClosed);
      stampServer(res);
    })) return;
    if (target === METRICS_PATH && isLoopback(environ.remoteAddr)) {
      res.on('close', onResponseClosed);
      stampServer(res);
      answerMetrics(res, metrics);
      return;
    }

    if (options.realtime !== null) {
      res.on('close', onResponseClosed);
      if (options.realtime(req, res, target, environ.remoteAddr)) return;
      res.off('close', onResponseClosed);
    }

    if (staticHandler !== null && staticHandler(req, res, environ.pathInfo)) {
      res.on('close', writeAccessLine === null ? onResponseClosed : () => {
        closeResponse(closeWork, 'access-log', res.statusCode, startedAt, null, null, writeAccessLine);
      });
      return;
    }

    if (listener.clientCertificates === true) environ.pairs.push(...clientCertificatePairs(socket));
    const sink = new HttpResponseSink(res, log, serverHeader, guard);
    const upgradable = options.appWebSockets?.sinkFor(req, res, sink) ?? sink;
    const label = { method: req.method ?? 'GET', path: environ.pathInfo };
    let exchange: Exchange | null = null;
    const start = (pairs: string[], body: Readable | null, file: BodyFile | null = null): void => {
      const started = new Exchange(encodeStrings(pairs), body, upgradable, label, file);
      exchange = started;
      sink.exchange = started;
      // A pipelined HTTP/1.1 request waits until the answers before it are written out.
      whenConnectionFree(res, () => pool.dispatch(started));
    };
    // One listener per response (this is the hot path): count, cancel if cut short, log.
    res.on('close', () => {
      closeResponse(closeWork, 'response.close', res.statusCode, startedAt, exchange, res, writeAccessLine);
    });
    // A body may be refused (413) or spooled before the request is dispatched. An HTTP/2 body
    // without Content-Length is spooled like a chunked one, so web2py gets its CONTENT_LENGTH.
    if (environ.hasBody || hasHttp2Body(req)) {
      // What listens to a body (limit, spool, 100-continue, the channel) runs behind the guard.
      guard.watch(req, 'request.body', () => failResponse(res));
      bodies.receive(req, res, environ.pairs, start);
    } else {
      start(environ.pairs, null);
    }
  };

  return Object.assign(handle, { takeHttp2Stream: http2Taker(listener, options, readsHeaders) });
}

/**
 * An application request on an HTTP/2 stream, answered on the raw stream (Http2StreamResponse)
 * instead of through Node's compatibility layer: what the handler does for it, in its order. Only
 * a request without a body (its HEADERS ended the stream, no Content-Length or Transfer-Encoding,
 * no `Expect`), with an origin-form target that no built-in page, the realtime hub nor the static
 * files take, whose head the checks accept and whose environ builds, on a connection not being
 * closed; anything else (refusals included: they are answered, logged and counted there) goes to
 * the compatibility layer (false). An HTTP/2 request is never a WebSocket upgrade (app-sockets.ts
 * takes HTTP/1.1 ones only).
 */
function http2AppTaker(
  listener: ListenerFacts, options: HandlerOptions, readsHeaders: boolean, isClaimed: (target: string, pathInfo: string) => boolean,
): Http2StreamTaker {
  const { pool, log, accessLog, staticHandler, metrics, rejections, headLimits, serverHeader } = options;
  const { guard } = rejections;
  const formatLine = options.formatAccessLine;
  const closeWork: ResponseCloseWork = { metrics, onResponseClosed: options.onResponseClosed, guard };
  return (stream, headers, rawHeaders) => {
    const method = headers[':method'];
    const target = headers[':path'];
    if (!stream.endAfterHeaders || typeof method !== 'string' || typeof target !== 'string' || target.charCodeAt(0) !== 0x2f /* '/' */) return false;
    if (headers.expect !== undefined || stream.closed || stream.destroyed) return false;
    const socket = stream.session?.socket;
    if (socket === undefined || rejections.isClosing(socket)) return false;
    if (checkRequestHead({ method, url: target, httpVersionMajor: 2, httpVersionMinor: 0, rawHeaders }, headLimits) !== null) return false;
    const environ = buildEnviron({ method, target, httpVersion: '2.0', rawHeaders, remoteAddress: socket.remoteAddress, remotePort: socket.remotePort }, listener);
    if ('badRequest' in environ || environ.hasBody) return false;
    if (isClaimed(target, environ.pathInfo) || (staticHandler !== null && !staticHandler.leaves(method, environ.pathInfo, target))) return false;

    const res = new Http2StreamResponse(stream, method, target, headers);
    const startedAt = performance.now();
    options.onResponseOpened();
    let exchange: Exchange | null = null;
    // The compatibility layer drops stream errors (a reset with an error code) too: the close says it all.
    stream.on('error', ignore);
    const writeLine = accessLog === null ? null : () => accessLog.write(formatLine(accessEntry(res.req, res, target, environ, startedAt, readsHeaders)));
    // Right after the count went up: whatever fails below, the close still counts it down.
    stream.once('close', () => {
      closeResponse(closeWork, 'response.close', res.statusCode, startedAt, exchange, res, writeLine);
    });
    noteRequestId(res, environ.requestId);
    if (listener.clientCertificates === true) environ.pairs.push(...clientCertificatePairs(socket));
    const sink = new HttpResponseSink(res, log, serverHeader, guard);
    const started = new Exchange(encodeStrings(environ.pairs), null, sink, { method, path: environ.pathInfo }, null);
    exchange = started;
    sink.exchange = started;
    whenConnectionFree(res, () => pool.dispatch(started));
    return true;
  };
}

/** Targets the handler answers before the application and the static files; the status page's paths are left to it whoever asks. */
function claimedTargets(options: HandlerOptions): (target: string, pathInfo: string) => boolean {
  const { statusPage } = options;
  return (target, pathInfo) => target === HEALTH_PATH || target === METRICS_PATH || (statusPage !== null && StatusPage.owns(pathInfo))
    || (options.realtimeOwns?.(target) ?? false);
}

/** What HTTP/2 streams are answered on the stream itself: cached static files first, then application requests without a body. */
function http2Taker(listener: ListenerFacts, options: HandlerOptions, readsHeaders: boolean): Http2StreamTaker {
  const isClaimed = claimedTargets(options);
  const takeApp = http2AppTaker(listener, options, readsHeaders, isClaimed);
  const { staticHandler } = options;
  if (staticHandler === null) return takeApp;
  const takeStatic = http2StaticTaker(listener, options, staticHandler, readsHeaders, isClaimed);
  return (stream, headers, rawHeaders) => takeStatic(stream, headers, rawHeaders) || takeApp(stream, headers, rawHeaders);
}

/** Cached static files on HTTP/2 streams (http2-static.ts), with what the handler would use for them. */
function http2StaticTaker(
  listener: ListenerFacts, options: HandlerOptions, staticHandler: StaticHandler, readsHeaders: boolean, isClaimed: (target: string, pathInfo: string) => boolean,
): Http2StreamTaker {
  return createHttp2StaticTaker({
    listener, staticHandler, readsHeaders, headLimits: options.headLimits, serverHeader: options.serverHeader, metrics: options.metrics,
    accessLog: options.accessLog, formatAccessLine: options.formatAccessLine, guard: options.rejections.guard,
    onResponseOpened: options.onResponseOpened, onResponseClosed: options.onResponseClosed, isClaimed,
  });
}

/**
 * A request that came on an HTTP/2 stream (Node's compatibility API). Its version says nothing:
 * an HTTP/1.x connection may send a request line with `HTTP/2.0` in it.
 */
function isHttp2Request(req: IncomingMessage): req is IncomingMessage & Http2ServerRequest {
  return req instanceof Http2ServerRequest;
}

/** An HTTP/2 request has a body when its HEADERS frame did not end the stream (no Content-Length needed). */
function hasHttp2Body(req: IncomingMessage): boolean {
  return isHttp2Request(req) && !req.stream.endAfterHeaders;
}

function ignore(): void {}

/** Refuses a request (request-checks.ts, environ.ts); it gets a new id: its head is not one to take anything from. */
function refuser(rejections: ClientRejections, onResponseClosed: (this: ServerResponse) => void) {
  return (res: ServerResponse, code: ErrorCode, details: ErrorDetails): void => {
    res.on('close', onResponseClosed);
    noteRequestId(res, newRequestId());
    rejections.refuseRequest(res.req, res, code, details);
  };
}

/** /status, /status.json, /status/assets/*: answered (true) when the client may see them, else left to the app (false). */
function answerStatus(page: StatusPage, req: IncomingMessage, res: ServerResponse, environ: { pathInfo: string; remoteAddr: string }, prepare: () => void): boolean {
  const target = req.url ?? '/';
  const queryAt = target.indexOf('?');
  const access = page.access(environ.remoteAddr, req.headers, queryAt < 0 ? '' : target.slice(queryAt + 1));
  if (access === 'not-ours') return false;
  prepare();
  if (access === 'allowed') page.answer(environ.pathInfo, res);
  else page.refuse(res);
  return true;
}

/**
 * The access line's facts, read when the response closed. `remoteAddr` is environ REMOTE_ADDR
 * (the client a trusted proxy named), as web2py logs it; the duration runs from when the request
 * reached the handler (`startedAt`, performance.now(), shared with the status page) to now, and
 * the time is now (web2py's `datetime.today()` after the application ran; nginx's `$time_local`).
 */
function accessEntry(
  req: Pick<IncomingMessage, 'method' | 'httpVersion' | 'headers'>, res: SinkResponse, target: string, environ: { pathInfo: string; remoteAddr: string; requestId: string },
  startedAt: number, readsHeaders: boolean,
): RequestAccessEntry {
  const headers = readsHeaders ? req.headers : {};
  return {
    remoteAddr: environ.remoteAddr, time: new Date(), method: req.method ?? 'GET', pathInfo: environ.pathInfo,
    protocol: `HTTP/${req.httpVersion}`, status: res.statusCode, seconds: (performance.now() - startedAt) / 1000,
    target, bodyBytes: bodyBytesOf(res, isAnswerComplete(res)), referer: headers.referer, userAgent: headers['user-agent'],
    requestId: environ.requestId,
  };
}
