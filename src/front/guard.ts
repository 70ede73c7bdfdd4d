/**
 * @module The front's guard against its own bugs: whatever a client sends, the process carries on.
 *
 * Every callback that untrusted input can reach runs behind one `FrontGuard`: the events of each
 * listening server (request, checkContinue, clientError, upgrade, connect, connection,
 * secureConnection, tlsClientError, HTTP/2 session and stream), the events of each HTTP/2
 * session, and the listeners the front adds to responses, bodies and files (access log line,
 * file streams). An exception there is a bug of the front, never the client's fault, and must
 * not reach Node's `uncaughtException` (which ends the process and every other request with it).
 * Instead it is logged once (`front.bug`, with its stack), counted (`w2n_front_bugs_total`, by
 * where it happened), and its damage is kept to its own request or connection: a response that
 * has not started gets `500`, one that has is cut, a bare connection or session is destroyed.
 *
 * Servers and sessions are guarded as a whole (`watch`, which puts a try/catch around their
 * `emit`), so a listener added later by any module (or by Node itself) is covered too; nothing
 * per request is added on the HTTP/1.1 hot path.
 */
import type { EventEmitter } from 'node:events';
import { ServerResponse } from 'node:http';
import { Http2ServerResponse, constants as http2, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import { Stream } from 'node:stream';
import { LogEvents } from '../observability/events.js';
import { Http2StreamResponse, type AnyResponse } from './http2-stream-response.js';
import type { Logger } from '../observability/log.js';

/** What the guard needs of the metrics: one counter. */
export interface BugCounter {
  frontBug(where: string): void;
}

const BUG_BODY = 'Internal Server Error\n';

export class FrontGuard {
  constructor(private readonly log: Logger, private readonly metrics: BugCounter) {}

  /** One bug: logged with its stack and counted; `where` is a short fixed name (a metric label). */
  report(where: string, error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    const stack = error instanceof Error && typeof error.stack === 'string' ? error.stack : message;
    try {
      LogEvents.frontBug(this.log, { where, message, stack });
      this.metrics.frontBug(where);
    } catch {
      // The log or the counter failing must not turn one bug into a crash.
    }
  }

  /**
   * Runs `action`; if it throws, reports it and runs `contain`, which keeps the damage to the
   * request or connection concerned (itself guarded: a throw there is reported, then dropped).
   */
  run(where: string, action: () => void, contain: () => void): void {
    try {
      action();
    } catch (error: unknown) {
      this.caught(where, error, contain);
    }
  }

  /** For a try/catch of its own (no closure on a hot path): reports `error`, then runs `contain`, guarded. */
  caught(where: string, error: unknown, contain: () => void): void {
    this.report(where, error);
    try {
      contain();
    } catch (again: unknown) {
      this.report(`${where}.contain`, again);
    }
  }

  /** `listener` behind the guard; `contain` gets the listener's own arguments. */
  wrap<A extends unknown[]>(where: string, listener: (...args: A) => void, contain: (...args: A) => void): (...args: A) => void {
    return (...args: A) => this.run(where, () => listener(...args), () => contain(...args));
  }

  /**
   * Every event `emitter` emits runs behind the guard, whoever listens: a listener that throws
   * is reported as `<where>.<event>` and what the event carries is contained (containArgs).
   * HTTP/2 sessions the server emits are watched in turn.
   */
  watch(emitter: EventEmitter, where: string, containEmitter: () => void = () => {}): void {
    const emit = emitter.emit;
    const report = (name: string, error: unknown): void => this.report(name, error);
    const watchSession = (session: ServerHttp2Session): void => this.watch(session, 'http2.session', () => session.destroy());
    Object.defineProperty(emitter, 'emit', {
      configurable: true,
      writable: true,
      value: function guardedEmit(this: EventEmitter, event: string | symbol, ...args: unknown[]): boolean {
        const session = args[0];
        if (event === 'session' && isHttp2Session(session)) watchSession(session);
        try {
          return Reflect.apply(emit, this, [event, ...args]);
        } catch (error: unknown) {
          report(`${where}.${String(event)}`, error);
          try {
            // An event about the emitter itself (a body's data, a session's own): the emitter's owner goes.
            if (args.some(isContainable)) containArgs(args);
            else containEmitter();
          } catch (again: unknown) {
            report(`${where}.${String(event)}.contain`, again);
          }
          return true;
        }
      },
    });
  }
}

/**
 * The damage of a bug, kept to what the event was about: a response gets 500 or is cut, an
 * HTTP/2 stream likewise, a session or connection is destroyed.
 */
function containArgs(args: readonly unknown[]): void {
  const response = args.find((arg) => arg instanceof ServerResponse || arg instanceof Http2ServerResponse);
  if (response instanceof ServerResponse || response instanceof Http2ServerResponse) {
    failResponse(response);
    return;
  }
  for (const arg of args) {
    if (isHttp2Stream(arg)) failStream(arg);
    else if (isHttp2Session(arg)) arg.destroy();
    else if (arg instanceof Stream && 'destroy' in arg && typeof arg.destroy === 'function') arg.destroy();
  }
}

/** Something containArgs can cut: a response, stream, session or socket. */
function isContainable(arg: unknown): boolean {
  return arg instanceof Stream || arg instanceof Http2ServerResponse || isHttp2Session(arg);
}

/** node:http2 exports neither class: an HTTP/2 server stream is the Duplex that can `respond`. */
function isHttp2Stream(value: unknown): value is ServerHttp2Stream {
  return value instanceof Stream && 'respond' in value && typeof value.respond === 'function' && 'rstCode' in value;
}

/** A session is the emitter with `goaway` and `settings`. */
function isHttp2Session(value: unknown): value is ServerHttp2Session {
  return typeof value === 'object' && value !== null && 'goaway' in value && typeof value.goaway === 'function'
    && 'settings' in value && 'destroy' in value;
}

/** A response a bug broke: 500 if none of it was sent, else cut (a short answer must not look whole). */
export function failResponse(res: AnyResponse): void {
  // An answer on the raw stream (handler.ts): the same 500, or the same reset, straight on the stream.
  if (res instanceof Http2StreamResponse) {
    if (!res.headersSent) res.statusCode = 500;
    failStream(res.stream);
    return;
  }
  if (res.headersSent || res.writableEnded || res.destroyed) {
    if (res instanceof Http2ServerResponse) failStream(res.stream);
    else res.destroy();
    return;
  }
  try {
    // Whatever state the bug left the connection in, it is not reused.
    if (res instanceof ServerResponse) res.shouldKeepAlive = false;
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    res.statusCode = 500;
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.setHeader('Content-Length', Buffer.byteLength(BUG_BODY));
    res.end(BUG_BODY);
  } catch {
    if (res instanceof Http2ServerResponse) failStream(res.stream);
    else res.destroy();
  }
}

function failStream(stream: ServerHttp2Stream): void {
  if (stream.destroyed) return;
  if (!stream.headersSent) {
    try {
      stream.respond({ ':status': 500, 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(BUG_BODY) });
      stream.end(BUG_BODY);
      return;
    } catch {
      // fall through to the reset
    }
  }
  stream.close(http2.NGHTTP2_INTERNAL_ERROR);
}
