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
import { buildEnviron, normalizeAddress, type ListenerFacts } from './environ.js';
import { HttpResponseSink, sendPlainError } from './response-sink.js';
import { answerHealth, HEALTH_PATH } from './builtins/health.js';

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
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

export function createRequestHandler(listener: ListenerFacts, options: HandlerOptions): RequestHandler {
  const { pool, log, accessLog } = options;
  return (req, res) => {
    const startedAt = performance.now();
    if (options.isDraining()) res.shouldKeepAlive = false;
    const socket = req.socket;
    const target = req.url ?? '/';

    if (target === HEALTH_PATH) {
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
      LogEvents.clientError(log, { code: 'W2N_ERR_CLIENT_BAD_REQUEST', remoteAddr: socket.remoteAddress, reason: environ.badRequest });
      res.shouldKeepAlive = false;
      sendPlainError(res, 400, `Bad Request: ${environ.badRequest}\n`);
      return;
    }

    if (accessLog !== null) {
      const remoteAddr = normalizeAddress(socket.remoteAddress);
      const method = req.method ?? 'GET';
      const protocol = `HTTP/${req.httpVersion}`;
      const time = new Date();
      res.once('close', () => {
        accessLog.write(formatAccessLine({
          remoteAddr, time, method, pathInfo: environ.pathInfo, protocol,
          status: res.statusCode, seconds: (performance.now() - startedAt) / 1000,
        }));
      });
    }

    const sink = new HttpResponseSink(req, res, log);
    const exchange = new Exchange(encodeStrings(environ.pairs), environ.hasBody ? req : null, sink, {
      method: req.method ?? 'GET', path: environ.pathInfo,
    });
    sink.exchange = exchange;
    res.once('close', () => {
      if (!res.writableFinished) exchange.cancel();
    });
    pool.dispatch(exchange);
  };
}
