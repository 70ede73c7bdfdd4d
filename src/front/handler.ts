/**
 * @module HTTP request → built-in answer or an Exchange for the worker pool; access log.
 *
 * The front talks to the pool only through `RequestDispatcher` (dispatch + readiness): it never
 * sees workers, processes or frames.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LogEvents } from '../observability/events.js';
import type { Logger } from '../observability/log.js';
import { formatAccessLine, type AccessLog } from '../observability/access-log.js';
import { encodeStrings } from '../protocol/encode.js';
import { Exchange } from '../pool/exchange.js';
import { buildEnviron, type ListenerFacts } from './environ.js';
import { HttpResponseSink, sendPlainError } from './response-sink.js';
import { answerHealth, HEALTH_PATH } from './builtins/health.js';
import type { StaticHandler } from './static/serve.js';
import { answerMetrics, isLoopback, METRICS_PATH } from './builtins/metrics.js';
import type { Metrics } from '../observability/metrics.js';

export interface RequestDispatcher {
  dispatch(exchange: Exchange): void;
  readonly isReady: boolean;
}

export interface HandlerOptions {
  pool: RequestDispatcher;
  log: Logger;
  accessLog: AccessLog | null;
  /** True once a graceful stop began: answers carry `Connection: close`. */
  isDraining: () => boolean;
  /** Told when each response starts and when it is closed (finished or cut): in-flight count. */
  onResponseOpened: () => void;
  onResponseClosed: () => void;
  /** web2py static files served by the front (null when offload is off). */
  staticHandler: StaticHandler | null;
  metrics: Metrics;
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

export function createRequestHandler(listener: ListenerFacts, options: HandlerOptions): RequestHandler {
  const { pool, log, accessLog } = options;
  const { onResponseOpened, staticHandler, metrics } = options;
  const onResponseClosed = function (this: ServerResponse): void {
    metrics.responseSent(this.statusCode);
    options.onResponseClosed();
  };
  return (req, res) => {
    onResponseOpened();
    if (options.isDraining()) res.shouldKeepAlive = false;
    const socket = req.socket;
    const target = req.url ?? '/';

    if (target === HEALTH_PATH) {
      res.on('close', onResponseClosed);
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
      res.on('close', onResponseClosed);
      LogEvents.clientError(log, { code: 'W2N_ERR_CLIENT_BAD_REQUEST', remoteAddr: socket.remoteAddress, reason: environ.badRequest });
      res.shouldKeepAlive = false;
      sendPlainError(res, 400, `Bad Request: ${environ.badRequest}\n`);
      return;
    }
    // The client as resolved: through a trusted proxy on 127.0.0.1, the world is not loopback.
    if (target === METRICS_PATH && isLoopback(environ.remoteAddr)) {
      res.on('close', onResponseClosed);
      answerMetrics(res, metrics);
      return;
    }

    if (staticHandler !== null && staticHandler(req, res, environ.pathInfo)) {
      const logLine = accessLog === null ? null : startAccessLine(req, environ.pathInfo, environ.remoteAddr);
      res.on('close', () => {
        if (logLine !== null) accessLog!.write(logLine(res.statusCode));
        onResponseClosed.call(res);
      });
      return;
    }

    const sink = new HttpResponseSink(res, log);
    const exchange = new Exchange(encodeStrings(environ.pairs), environ.hasBody ? req : null, sink, {
      method: req.method ?? 'GET', path: environ.pathInfo,
    });
    sink.exchange = exchange;
    // One listener per response (this is the hot path): cancel if cut short, log, count.
    const logLine = accessLog === null ? null : startAccessLine(req, environ.pathInfo, environ.remoteAddr);
    res.on('close', () => {
      if (!res.writableFinished) exchange.cancel();
      if (logLine !== null) accessLog!.write(logLine(res.statusCode));
      onResponseClosed.call(res);
    });
    pool.dispatch(exchange);
  };
}

/**
 * Captures what web2py's access line needs at the start; returns the line maker for the end.
 * `remoteAddr` is environ REMOTE_ADDR (the client a trusted proxy named), as web2py logs it.
 */
function startAccessLine(req: IncomingMessage, pathInfo: string, remoteAddr: string): (status: number) => string {
  const startedAt = performance.now();
  const entry = {
    remoteAddr, time: new Date(), method: req.method ?? 'GET',
    pathInfo, protocol: `HTTP/${req.httpVersion}`,
  };
  return (status) => formatAccessLine({ ...entry, status, seconds: (performance.now() - startedAt) / 1000 });
}
