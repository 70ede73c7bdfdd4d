/**
 * @module The listening sockets: HTTP, HTTPS or HTTP/2 servers, their limits, and bad-input answers.
 *
 * Node's llhttp parser is strict (no smuggling: Content-Length with Transfer-Encoding, bad
 * chunk sizes, obs-fold and bare LF are rejected); we keep it strict and give every rejection a
 * clear status (400, 408, 414, 431) and a closed connection instead of Node's bare socket close
 * (client-errors.ts). The head checks llhttp does not make are in request-checks.ts.
 *
 * A TLS listener with HTTP/2 on is `http2.createSecureServer({ allowHTTP1: true })`: ALPN offers
 * `h2` then `http/1.1`, and one request handler serves both through Node's compatibility API
 * (Http2ServerRequest/Response have the members the front uses; handler.ts and
 * response-sink.ts deal with the few that differ). HTTP/1.1 connections on it run Node's own
 * HTTP/1 connection code, which reads its limits from the server object: they are set there.
 */
import { createServer as createHttpServer, type Server as HttpServer, type ServerOptions } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createSecureServer, type Http2SecureServer, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Server as NetServer } from 'node:net';
import type { Duplex } from 'node:stream';
import { ServerError } from '../errors/index.js';
import { secureContextOptions, type LoadedTls } from './tls-files.js';
import type { RequestHandler } from './handler.js';
import type { Http2StreamTaker } from './http2-static.js';
import { enforceHttp1Deadlines } from './http1-on-http2.js';
import type { ClientError, ClientRejections } from './client-errors.js';
import { serveUpgradesAsRequests, type UpgradeTaker } from './upgrade.js';
import { acceptRawTargetBytes } from './raw-target-bytes.js';

/** HTTP/2 on a TLS listener. */
export interface Http2Options {
  /** SETTINGS_MAX_CONCURRENT_STREAMS. */
  maxConcurrentStreams: number;
}

export interface ListenerOptions {
  limits: ListenerLimits;
  /** null: plain HTTP. */
  tls: LoadedTls | null;
  /** null: HTTP/1.1 only (always so without TLS: h2c is not offered). */
  http2: Http2Options | null;
  /** Answers, logs and counts what Node's parser refuses (client-errors.ts). */
  rejections: ClientRejections;
  /** WebSocket upgrades taken before they are served as requests (the realtime hub); null: none. */
  takeUpgrade?: UpgradeTaker | null;
}

/** What createListener makes: http.Server, https.Server or an HTTP/2 secure server. */
export type NodeServer = HttpServer | HttpsServer | Http2SecureServer;

export interface ListenerLimits {
  maxHeaderBytes: number;
  headersTimeoutMs: number;
  /** 0 = no limit on the whole request. */
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** `--max-headers`: Node keeps this many in `req.headers`; request-checks.ts refuses more. */
  maxHeaders: number;
}

/**
 * Node checks the head and request deadlines only every `connectionsCheckingInterval` (30 s by
 * default: a 10 s --headers-timeout would really be up to 40 s). A quarter of the shortest
 * deadline, at most 1 s, keeps each within a quarter of itself; the check walks only
 * connections with a request in progress.
 */
function checkingIntervalMs(headersTimeoutMs: number, requestTimeoutMs: number): number {
  const shortest = requestTimeoutMs > 0 ? Math.min(headersTimeoutMs, requestTimeoutMs) : headersTimeoutMs;
  return Math.max(25, Math.min(1_000, Math.floor(shortest / 4)));
}

/**
 * What one HTTP/2 client may cost, beyond its streams: Node's defaults, written out so they are
 * seen and kept (test/e2e/h2-outages.test.ts floods each and checks the connection is closed,
 * the front's memory stays put and other clients are answered). Rapid reset is limited in
 * http2-sessions.ts; CONTINUATION floods by nghttp2 itself (1.61, in Node 20.12 and later, caps
 * the CONTINUATION frames of one header block; its bytes count against maxHeaderListSize), and
 * PING and SETTINGS floods by nghttp2's cap on the acknowledgements it has queued.
 */
const HTTP2_CLIENT_LIMITS = {
  /** MB a session may hold (header blocks, frames and data queued out): past it, new streams are refused (ENHANCE_YOUR_CALM). */
  maxSessionMemory: 10,
  /** Invalid frames (frames on closed or unknown streams, malformed ones) before the session is destroyed. */
  maxSessionInvalidFrames: 1000,
  /** Streams refused (past SETTINGS_MAX_CONCURRENT_STREAMS or the memory above) before the session is destroyed. */
  maxSessionRejectedStreams: 100,
  /** Entries in one SETTINGS frame. */
  maxSettings: 32,
  /** Our own PINGs not yet acknowledged. */
  maxOutstandingPings: 10,
  /** A TLS connection that chose no protocol Node knows is closed after this (ms). */
  unknownProtocolTimeout: 10_000,
} as const;

export function createListener(handler: RequestHandler, options: ListenerOptions): NodeServer {
  const { limits, tls, http2, rejections } = options;
  const requestTimeout = Math.round(limits.requestTimeoutMs);
  // Node refuses a head deadline longer than the whole-request one; the shorter one wins anyway.
  const headersTimeout = requestTimeout > 0 ? Math.min(Math.round(limits.headersTimeoutMs), requestTimeout) : Math.round(limits.headersTimeoutMs);
  const http1Options: ServerOptions = {
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout,
    requestTimeout,
    keepAliveTimeout: Math.round(limits.keepAliveTimeoutMs),
    connectionsCheckingInterval: checkingIntervalMs(headersTimeout, requestTimeout),
    noDelay: true,
    // request-checks.ts refuses a missing (and a repeated) Host itself, logged and counted like every refusal.
    requireHostHeader: false,
    insecureHTTPParser: false,
  };
  // With a CA, a client certificate is asked for but not required; handler.ts passes a verified one on.
  const tlsOptions = tls === null ? null : {
    ...secureContextOptions(tls),
    ...(tls.ca === null ? {} : { requestCert: true, rejectUnauthorized: false }),
  };
  let server: NodeServer;
  if (tlsOptions !== null && http2 !== null) {
    server = createSecureServer({
      ...tlsOptions,
      allowHTTP1: true,
      noDelay: true,
      settings: { maxConcurrentStreams: http2.maxConcurrentStreams, maxHeaderListSize: limits.maxHeaderBytes, enablePush: false },
      // --max-headers, plus the 4 pseudo-headers of a request.
      maxHeaderListPairs: limits.maxHeaders + 4,
      ...HTTP2_CLIENT_LIMITS,
      // A TLS handshake gets no longer than a head (Node's own default is 120 s).
      handshakeTimeout: headersTimeout,
    });
    // Node's compatibility API: Http2ServerRequest/Response have what the handler uses.
    server.on('request', handler);
    if (handler.takeHttp2Stream !== undefined) takeStreamsFirst(server, handler.takeHttp2Stream);
    http2Servers.add(server);
    // The HTTP/1.1 side reads these from the server object (http's connection listener).
    Object.assign(server, {
      maxHeaderSize: http1Options.maxHeaderSize,
      headersTimeout: http1Options.headersTimeout,
      requestTimeout: http1Options.requestTimeout,
      keepAliveTimeout: http1Options.keepAliveTimeout,
      requireHostHeader: false,
      insecureHTTPParser: false,
      maxHeadersCount: limits.maxHeaders,
    });
    enforceHttp1Deadlines(server, http1Options.connectionsCheckingInterval!);
  } else {
    const http1 = tlsOptions === null
      ? createHttpServer(http1Options, handler)
      : createHttpsServer({ ...http1Options, ...tlsOptions, handshakeTimeout: headersTimeout }, handler);
    http1.keepAliveTimeout = http1Options.keepAliveTimeout!;
    http1.maxHeadersCount = limits.maxHeaders;
    server = http1;
  }
  // Every event of the server (and of its HTTP/2 sessions) behind the guard: a bug costs one
  // request or connection, never the process (guard.ts).
  rejections.guard.watch(server, 'server');
  server.on('clientError', (error: ClientError, socket: Duplex) => rejections.onClientError(error, socket));
  // An Upgrade request the realtime hub does not take is an ordinary one, and the bytes after it are kept.
  serveUpgradesAsRequests(server, rejections, { maxHeaders: limits.maxHeaders, maxHeaderBytes: limits.maxHeaderBytes }, options.takeUpgrade ?? null);
  // Raw bytes ≥ 0x80 in an HTTP/1 request target are served, as PEP 3333 says (llhttp refuses them).
  acceptRawTargetBytes(server, tlsOptions !== null, limits.maxHeaderBytes);
  // `Expect: 100-continue`: Node would send the 100 at once; the handler sends it when the body
  // is really going to be read, and never for a body it refuses (front/request-body.ts). On an
  // HTTP/2 server this covers both its HTTP/2 streams and its HTTP/1.1 connections.
  server.on('checkContinue', handler);
  return server;
}

/**
 * The 'request' listener made Node add its compatibility layer as a 'stream' listener (one that
 * makes an Http2ServerRequest and Http2ServerResponse and emits 'request'). `take` sees each
 * stream first; a stream it leaves goes to that listener with the same arguments, as before.
 */
function takeStreamsFirst(server: Http2SecureServer, take: Http2StreamTaker): void {
  const compatibility = server.listeners('stream') as ((...args: unknown[]) => void)[];
  server.removeAllListeners('stream');
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]) => {
    if (take(stream, headers, rawHeaders)) return;
    for (const listener of compatibility) listener.call(server, stream, headers, flags, rawHeaders);
  });
}

const http2Servers = new WeakSet<NodeServer>();

export function isHttp2Server(server: NodeServer): server is Http2SecureServer {
  return http2Servers.has(server);
}

/** The kernel's accept queue for each listener (capped by net.core.somaxconn); Node's default is 511. */
export const LISTEN_BACKLOG = 2048;

/**
 * Listens on a socket the primary bound (an inherited descriptor). A failure here is the
 * primary's hand-off gone wrong, not the operator's address: it is reported as it is.
 */
export function listenOnDescriptor(server: NetServer, fd: number, backlog: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (cause: NodeJS.ErrnoException): void => {
      reject(new ServerError('W2N_ERR_LISTEN_FAILED', { address: `inherited descriptor ${fd}`, reason: cause.message }, { cause }));
    };
    server.once('error', onError);
    // The backlog goes as an argument: Node reads `backlog` from the object form only for addresses.
    server.listen({ fd }, backlog, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
