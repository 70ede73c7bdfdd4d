/**
 * @module HTTP/2 streams for cached static files, answered on the raw Http2Stream.
 *
 * Node's compatibility layer makes an Http2ServerRequest and an Http2ServerResponse per stream,
 * with their listeners, and ends every answer with an empty DATA frame after `waitForTrailers`;
 * for a small file from memory (static/file-cache.ts) that is most of the front's work. A plain
 * GET or HEAD whose file the cache holds is answered here instead, with `stream.respond()` and
 * `stream.end(body)`: the same head (static/serve.ts answerOf: web2py's headers, Server,
 * X-Request-ID, validators, 304) and the same body, the same checks of the head
 * (request-checks.ts) and the same environ facts (environ.ts: the request id and the client a
 * trusted proxy names), the same count of responses in flight, the same metrics and the same
 * access line when the stream closes (the line of a reset stream counts the body as handed
 * over, as the compatibility path does).
 *
 * Anything else goes to the compatibility layer unchanged (`false`): not GET/HEAD, not a cached
 * static file, a Range or a precondition (served from disk by send), `Expect`, a head the checks
 * refuse (refused there, logged and counted as always), a target under the realtime prefix or one
 * of the built-in pages, a stream already closed. listeners.ts puts this in front of Node's own
 * 'stream' listener.
 */
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { AccessLog } from '../observability/access-log.js';
import type { AccessLineFormatter } from '../observability/access-formats.js';
import type { Metrics } from '../observability/metrics.js';
import { buildEnviron, decodePath, type ListenerFacts } from './environ.js';
import type { FrontGuard } from './guard.js';
import { checkRequestHead, type HeadLimits } from './request-checks.js';
import type { StaticHandler } from './static/serve.js';
import { closeResponse, type ResponseCloseWork } from './response-close.js';

/** true: the stream is answered here; false: the compatibility layer serves it. */
export type Http2StreamTaker = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[]) => boolean;

export interface Http2StaticOptions {
  readonly listener: ListenerFacts;
  readonly staticHandler: StaticHandler;
  readonly headLimits: HeadLimits;
  readonly serverHeader: string | null;
  readonly metrics: Metrics;
  readonly accessLog: AccessLog | null;
  readonly formatAccessLine: AccessLineFormatter;
  /** The line reads Referer and User-Agent (not web2py's format). */
  readonly readsHeaders: boolean;
  readonly guard: FrontGuard;
  readonly onResponseOpened: () => void;
  readonly onResponseClosed: () => void;
  /** Targets another part of the front answers first (/health, /metrics, /status, the realtime prefix). */
  readonly isClaimed: (target: string, pathInfo: string) => boolean;
}

export function createHttp2StaticTaker(options: Http2StaticOptions): Http2StreamTaker {
  const { listener, staticHandler, headLimits, serverHeader, metrics, accessLog, guard } = options;
  const formatLine = options.formatAccessLine;
  const closeWork: ResponseCloseWork = { metrics, onResponseClosed: options.onResponseClosed, guard };
  return (stream, headers, rawHeaders) => {
    const method = headers[':method'];
    const target = headers[':path'];
    if ((method !== 'GET' && method !== 'HEAD') || typeof target !== 'string' || target.charCodeAt(0) !== 0x2f /* '/' */) return false;
    if (headers.expect !== undefined || stream.closed || stream.destroyed) return false;
    // The environ's own split (environ.ts splitTarget) for an origin-form target.
    const hash = target.indexOf('#');
    const beforeHash = hash < 0 ? target : target.slice(0, hash);
    const question = beforeHash.indexOf('?');
    const pathInfo = decodePath(question < 0 ? beforeHash : beforeHash.slice(0, question));
    const hit = staticHandler.cachedFor(method, pathInfo, question < 0 ? '' : beforeHash.slice(question + 1), headers);
    if (hit === null || options.isClaimed(target, pathInfo)) return false;
    if (checkRequestHead({ method, url: target, httpVersionMajor: 2, httpVersionMinor: 0, rawHeaders }, headLimits) !== null) return false;
    const socket = stream.session?.socket;
    const environ = buildEnviron({
      method, target, httpVersion: '2.0', rawHeaders, remoteAddress: socket?.remoteAddress, remotePort: socket?.remotePort,
    }, listener);
    if ('badRequest' in environ) return false;

    const startedAt = performance.now();
    options.onResponseOpened();
    const answer = staticHandler.answer(method, headers, hit, serverHeader, environ.requestId);
    const head: Record<string, string | number> = { ':status': answer.status };
    const { fields } = answer;
    for (let i = 0; i < fields.length; i += 2) head[(fields[i] as string).toLowerCase()] = fields[i + 1]!;
    // The compatibility layer drops stream errors (a reset with an error code) too: the close says it all.
    stream.on('error', ignore);
    const writeLine = accessLog === null ? null : (): void => {
      const requestHeaders = options.readsHeaders ? headers : {};
      accessLog.write(formatLine({
        remoteAddr: environ.remoteAddr, time: new Date(), method, pathInfo: environ.pathInfo, protocol: 'HTTP/2.0',
        status: answer.status, seconds: (performance.now() - startedAt) / 1000, target,
        bodyBytes: method === 'HEAD' || answer.body === null ? 0 : answer.body.length,
        referer: requestHeaders.referer, userAgent: requestHeaders['user-agent'], requestId: environ.requestId,
      }));
    };
    stream.once('close', () => {
      closeResponse(closeWork, 'http2-static.close', answer.status, startedAt, null, null, writeLine);
    });
    if (answer.body === null) {
      stream.respond(head, { endStream: true });
    } else {
      stream.respond(head);
      stream.end(answer.body);
    }
    return true;
  };
}

function ignore(): void {}
