/**
 * @module The HTTP/2 connections of one listener: their timeouts, and closing them at stop.
 *
 * Node's http2 server gives each connection one session and no timeouts of its own beyond an
 * inactivity timer (which would also cut a stream waiting on a slow page), so the front's
 * HTTP/1.1 limits are mapped here, per session:
 * - the client must acknowledge our SETTINGS (RFC 9113 §6.5.3: SETTINGS_TIMEOUT) and send its
 *   first request within `--headers-timeout`, else the connection is closed;
 * - a session with no open stream is closed (GOAWAY) after `--keep-alive-timeout`;
 * - a stream whose request is not fully received within `--request-timeout` gets 408 (or a reset
 *   if its answer has started), as llhttp's request timeout does on HTTP/1.1.
 * - a client that resets many streams before their answers (rapid reset, CVE-2023-44487: each
 *   reset frees its place under SETTINGS_MAX_CONCURRENT_STREAMS at once, so the client can make
 *   the front start, queue and cancel requests without limit) gets GOAWAY ENHANCE_YOUR_CALM and
 *   its connection is closed: more than RESET_BURST resets at once, or more than
 *   RESET_RATE_PER_S a second on average after that. A browser cancelling a page's requests
 *   resets at most SETTINGS_MAX_CONCURRENT_STREAMS at once.
 * At a graceful stop each session gets GOAWAY (`session.close()`): the streams it already took
 * finish, new ones are refused, and the connection closes when the last one ends; `server.close()`
 * alone would wait for clients to hang up.
 */
import { constants, type Http2SecureServer, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import { LogEvents } from '../observability/events.js';
import type { Logger } from '../observability/log.js';

export interface Http2SessionLimits {
  /** Time to acknowledge SETTINGS and to open the first stream (`--headers-timeout`). */
  readonly firstRequestTimeoutMs: number;
  /** A session without open streams for this long is closed (`--keep-alive-timeout`). */
  readonly idleTimeoutMs: number;
  /** Time to receive a whole request, body included; 0 = none (`--request-timeout`). */
  readonly requestTimeoutMs: number;
}

/**
 * A session in which no stream opened or closed for PROBE_AFTER_MS is sent a PING (once per
 * such quiet spell); one that does not answer within PROBE_WAIT_MS is closed. Why: after a
 * connection error (a frame that breaks the protocol) Node's nghttp2 session sends GOAWAY and stops reading its socket but is never
 * destroyed, so when the client then hangs up, nobody reads its FIN and the connection sits in
 * CLOSE_WAIT until an idle timer (up to --keep-alive-timeout) ends it: a client could hold the
 * server's descriptors long after leaving (fuzz corpus: h2-*-close-wait), also with a stream
 * still open (a request body that will never come). Such a session never answers a PING; a
 * live client must (RFC 9113 §6.7), whatever its flow-control windows. A busy session opens and
 * closes streams, so it is not probed; a quiet live one answers one PING per quiet spell.
 */
const PROBE_AFTER_MS = 500;
const PROBE_WAIT_MS = 2_000;

/** Streams a client may reset in a row (twice the default --http2-max-streams), then ... */
const RESET_BURST = 200;
/** ... on average per second (a token bucket refilled at this rate). */
const RESET_RATE_PER_S = 100;

/** The resets a session may still make: RESET_BURST, refilled at RESET_RATE_PER_S. */
class ResetAllowance {
  private tokens = RESET_BURST;
  private refilledAt = performance.now();

  /** Counts one reset; false once the client went past its allowance. */
  spend(): boolean {
    const now = performance.now();
    this.tokens = Math.min(RESET_BURST, this.tokens + ((now - this.refilledAt) / 1000) * RESET_RATE_PER_S);
    this.refilledAt = now;
    this.tokens -= 1;
    return this.tokens >= 0;
  }
}

export class Http2Sessions {
  private readonly sessions = new Set<ServerHttp2Session>();
  private isClosing = false;

  constructor(server: Http2SecureServer, private readonly limits: Http2SessionLimits, private readonly log: Logger) {
    server.on('session', (session: ServerHttp2Session) => this.track(session));
    server.on('sessionError', (error: Error & { code?: string }, session: ServerHttp2Session) => {
      LogEvents.clientError(log, { code: 'W2N_ERR_CLIENT_BAD_REQUEST', remoteAddr: session.socket?.remoteAddress, reason: `HTTP/2 ${error.code ?? ''} ${error.message}` });
    });
  }

  /** Open HTTP/2 connections. */
  get size(): number {
    return this.sessions.size;
  }

  /** GOAWAY to every session: streams already taken finish, the connection closes after them. */
  closeGracefully(): void {
    this.isClosing = true;
    for (const session of this.sessions) session.close();
  }

  /** Cuts every HTTP/2 connection now (end of the graceful period, or a forced stop). */
  destroyAll(): void {
    this.isClosing = true;
    for (const session of this.sessions) session.destroy();
  }

  private track(session: ServerHttp2Session): void {
    if (this.isClosing) {
      session.close();
      return;
    }
    this.sessions.add(session);
    const { limits } = this;
    let openStreams = 0;
    let idleTimer: NodeJS.Timeout | null = null;
    const closeIdle = (reason: string): void => {
      idleTimer = null;
      LogEvents.clientError(this.log, { code: 'W2N_ERR_CLIENT_TIMEOUT', remoteAddr: session.socket?.remoteAddress, reason });
      session.close();
    };
    const armIdle = (ms: number, reason: string): void => {
      if (idleTimer !== null) clearTimeout(idleTimer);
      idleTimer = setTimeout(closeIdle, ms, reason);
      idleTimer.unref();
    };
    armIdle(limits.firstRequestTimeoutMs, 'HTTP/2 session sent no request within --headers-timeout');
    let probeTimer: NodeJS.Timeout | null = null;
    const probe = (): void => {
      probeTimer = null;
      if (session.closed || session.destroyed) return;
      const deadline = setTimeout(() => {
        if (session.destroyed) return;
        LogEvents.clientError(this.log, { code: 'W2N_ERR_CLIENT_TIMEOUT', remoteAddr: session.socket?.remoteAddress, reason: 'HTTP/2 session did not answer a PING' });
        session.destroy();
      }, PROBE_WAIT_MS);
      deadline.unref();
      try {
        session.ping((error) => {
          clearTimeout(deadline);
          if (error !== null && !session.destroyed) session.destroy();
        });
      } catch {
        clearTimeout(deadline);
        session.destroy();
      }
    };
    // Stream events only note the time (they are the hot path); the one timer looks at it.
    let lastStreamEvent = Date.now();
    const onProbeTimer = (): void => {
      const quietMs = Date.now() - lastStreamEvent;
      if (quietMs < PROBE_AFTER_MS) {
        probeTimer = setTimeout(onProbeTimer, PROBE_AFTER_MS - quietMs);
        probeTimer.unref();
        return;
      }
      probe();
    };
    const armProbe = (): void => {
      lastStreamEvent = Date.now();
      if (probeTimer !== null) return;
      probeTimer = setTimeout(onProbeTimer, PROBE_AFTER_MS);
      probeTimer.unref();
    };
    armProbe();
    // Our SETTINGS must be acknowledged in time; a client that never does is not speaking HTTP/2.
    const settingsTimer = setTimeout(() => {
      if (session.closed || session.destroyed) return;
      LogEvents.clientError(this.log, { code: 'W2N_ERR_CLIENT_TIMEOUT', remoteAddr: session.socket?.remoteAddress, reason: 'HTTP/2 SETTINGS not acknowledged' });
      session.goaway(constants.NGHTTP2_SETTINGS_TIMEOUT);
      session.destroy();
    }, limits.firstRequestTimeoutMs);
    settingsTimer.unref();
    session.once('localSettings', () => clearTimeout(settingsTimer));

    const resets = new ResetAllowance();
    session.on('stream', (stream: ServerHttp2Stream) => {
      openStreams += 1;
      armProbe();
      if (idleTimer !== null) {
        clearTimeout(idleTimer);
        idleTimer = null;
      }
      const requestTimer = limits.requestTimeoutMs > 0 && !stream.endAfterHeaders ? this.watchRequest(stream) : null;
      stream.once('close', () => {
        if (requestTimer !== null) clearTimeout(requestTimer);
        openStreams -= 1;
        armProbe();
        if (stream.rstCode !== constants.NGHTTP2_NO_ERROR && !resets.spend() && !session.destroyed) {
          this.closeFlooding(session, `more than ${RESET_BURST} streams reset at once or ${RESET_RATE_PER_S} a second (rapid reset)`);
          return;
        }
        if (openStreams === 0 && !session.closed && !session.destroyed) {
          armIdle(limits.idleTimeoutMs, 'HTTP/2 session idle for --keep-alive-timeout');
        }
      });
    });
    session.once('close', () => {
      clearTimeout(settingsTimer);
      if (idleTimer !== null) clearTimeout(idleTimer);
      if (probeTimer !== null) clearTimeout(probeTimer);
      this.sessions.delete(session);
    });
  }

  /** GOAWAY ENHANCE_YOUR_CALM, then the connection is closed: its streams are cut, their requests cancelled. */
  private closeFlooding(session: ServerHttp2Session, reason: string): void {
    LogEvents.clientFlood(this.log, { code: 'W2N_ERR_CLIENT_FLOOD', remoteAddr: session.socket?.remoteAddress, reason });
    session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM);
    session.destroy();
  }

  /** 408 (or a reset once the answer started) for a request body still arriving after the deadline. */
  private watchRequest(stream: ServerHttp2Stream): NodeJS.Timeout {
    const timer = setTimeout(() => {
      if (stream.destroyed || stream.state.remoteClose !== 0) return;
      LogEvents.clientError(this.log, { code: 'W2N_ERR_CLIENT_TIMEOUT', remoteAddr: stream.session?.socket?.remoteAddress, reason: 'HTTP/2 request not received within --request-timeout' });
      if (stream.headersSent) {
        stream.close(constants.NGHTTP2_CANCEL);
        return;
      }
      const body = '408 Request Timeout\n';
      stream.respond({ ':status': 408, 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
      stream.end(body);
      stream.close(constants.NGHTTP2_NO_ERROR);
    }, this.limits.requestTimeoutMs);
    timer.unref();
    return timer;
  }
}
