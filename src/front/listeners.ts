/**
 * @module The listening sockets: HTTP, HTTPS or HTTP/2 servers, their limits, and bad-input answers.
 *
 * Node's llhttp parser is strict (no smuggling: Content-Length with Transfer-Encoding, bad
 * chunk sizes, obs-fold and bare LF are rejected); we keep it strict and give every rejection a
 * clear status (400, 408, 431) and a closed connection instead of Node's bare socket close.
 *
 * A TLS listener with HTTP/2 on is `http2.createSecureServer({ allowHTTP1: true })`: ALPN offers
 * `h2` then `http/1.1`, and one request handler serves both through Node's compatibility API
 * (Http2ServerRequest/Response have the members the front uses; handler.ts and
 * response-sink.ts deal with the few that differ). HTTP/1.1 connections on it run Node's own
 * HTTP/1 connection code, which reads its limits from the server object: they are set there.
 */
import { createServer as createHttpServer, STATUS_CODES, type Server as HttpServer, type ServerOptions } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import {
  createSecureServer, type Http2SecureServer, type Http2ServerRequest, type Http2ServerResponse,
} from 'node:http2';
import type { Server as NetServer } from 'node:net';
import { createSecureContext, type SecureContext, type TlsOptions } from 'node:tls';
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { ServerError } from '../errors/index.js';
import { LogEvents } from '../observability/events.js';
import type { Logger } from '../observability/log.js';
import type { RequestHandler } from './handler.js';

export interface TlsFiles {
  certificateFile: string;
  privateKeyFile: string;
  /** CA certificates for client certificates (web2py's `--interfaces` fifth field); none = not asked. */
  caFile?: string | null;
}

export interface LoadedTls {
  cert: Buffer;
  key: Buffer;
  /** Client certificates are asked for (optional) and checked against these. */
  ca: Buffer | null;
  context: SecureContext;
}

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
  log: Logger;
}

/** What createListener makes: http.Server, https.Server (typed as http.Server) or an HTTP/2 secure server. */
export type NodeServer = HttpServer | Http2SecureServer;

export interface ListenerLimits {
  maxHeaderBytes: number;
  headersTimeoutMs: number;
  /** 0 = no limit on the whole request. */
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
}

/** Reads and checks a certificate and key; any problem is W2N_ERR_TLS (exit 2 before listening). */
export function loadTls(files: TlsFiles): LoadedTls {
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = readFileSync(files.certificateFile);
  } catch (cause: unknown) {
    throw new ServerError('W2N_ERR_TLS', { reason: `cannot read certificate ${files.certificateFile}: ${(cause as Error).message}` }, { cause });
  }
  try {
    key = readFileSync(files.privateKeyFile);
  } catch (cause: unknown) {
    throw new ServerError('W2N_ERR_TLS', { reason: `cannot read private key ${files.privateKeyFile}: ${(cause as Error).message}` }, { cause });
  }
  let ca: Buffer | null = null;
  if (files.caFile != null) {
    try {
      ca = readFileSync(files.caFile);
    } catch (cause: unknown) {
      throw new ServerError('W2N_ERR_TLS', { reason: `cannot read CA file ${files.caFile}: ${(cause as Error).message}` }, { cause });
    }
  }
  try {
    const context = createSecureContext(secureContextOptions({ cert, key, ca }));
    return { cert, key, ca, context };
  } catch (cause: unknown) {
    const message = (cause as Error).message;
    const reason = /mismatch/i.test(message)
      ? `the private key ${files.privateKeyFile} does not belong to the certificate ${files.certificateFile}`
      : `cannot use certificate ${files.certificateFile} with key ${files.privateKeyFile}: ${message}`;
    throw new ServerError('W2N_ERR_TLS', { reason }, { cause });
  }
}

/** The TLS options of a listener, also used to re-read them on SIGHUP. */
export function secureContextOptions(tls: Pick<LoadedTls, 'cert' | 'key' | 'ca'>): TlsOptions {
  return { cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2', ...(tls.ca === null ? {} : { ca: tls.ca }) };
}

const clientErrorStatus: Record<string, number> = {
  HPE_HEADER_OVERFLOW: 431,
  ERR_HTTP_REQUEST_TIMEOUT: 408,
  HPE_URI_TOO_LONG: 414,
};

/** Headers beyond this many are ignored on HTTP/1.1 (Node's maxHeadersCount) and refused on HTTP/2. */
const MAX_HEADERS_COUNT = 200;

function answerClientError(error: Error & { code?: string }, socket: Duplex, log: Logger): void {
  const code = error.code ?? '';
  if (code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const statusCode = clientErrorStatus[code] ?? 400;
  const errorCode = statusCode === 431 ? 'W2N_ERR_CLIENT_HEADERS_TOO_LARGE' : statusCode === 408 ? 'W2N_ERR_CLIENT_TIMEOUT' : 'W2N_ERR_CLIENT_BAD_REQUEST';
  LogEvents.clientError(log, { code: errorCode, remoteAddr: (socket as { remoteAddress?: string }).remoteAddress, reason: `${code} ${error.message}` });
  const body = `${statusCode} ${STATUS_CODES[statusCode] ?? ''}\n`;
  socket.end(`HTTP/1.1 ${statusCode} ${STATUS_CODES[statusCode] ?? ''}\r\nConnection: close\r\n`
    + `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}

export function createListener(handler: RequestHandler, options: ListenerOptions): NodeServer {
  const { limits, tls, http2, log } = options;
  const http1Options: ServerOptions = {
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    noDelay: true,
    requireHostHeader: true,
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
      // HTTP/1.1's 200 headers, plus the 4 pseudo-headers of a request.
      maxHeaderListPairs: MAX_HEADERS_COUNT + 4,
    }, handler as unknown as (req: Http2ServerRequest, res: Http2ServerResponse) => void);
    http2Servers.add(server);
    // The HTTP/1.1 side reads these from the server object (http's connection listener).
    Object.assign(server, {
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      requireHostHeader: true,
      insecureHTTPParser: false,
      maxHeadersCount: MAX_HEADERS_COUNT,
    });
  } else {
    const http1 = tlsOptions === null
      ? createHttpServer(http1Options, handler)
      : createHttpsServer({ ...http1Options, ...tlsOptions }, handler) as unknown as HttpServer;
    http1.keepAliveTimeout = limits.keepAliveTimeoutMs;
    http1.maxHeadersCount = MAX_HEADERS_COUNT;
    server = http1;
  }
  server.on('clientError', (error: Error & { code?: string }, socket: Duplex) => answerClientError(error, socket, log));
  return server;
}

const http2Servers = new WeakSet<NodeServer>();

export function isHttp2Server(server: NodeServer): server is Http2SecureServer {
  return http2Servers.has(server);
}

/** Where a listener binds: a TCP address, or a Unix socket path. */
export type BindTarget = { ip: string; port: number } | { path: string };

/** `127.0.0.1:8000`, `[::1]:8000`, `unix:/run/app.sock`: how addresses appear in messages. */
export function formatBindTarget(target: BindTarget): string {
  if ('path' in target) return `unix:${target.path}`;
  return `${target.ip.includes(':') ? `[${target.ip}]` : target.ip}:${target.port}`;
}

/** Binds; address problems become one clear ServerError. Resolves with the bound port (0 for a path). */
export function listen(server: NetServer, target: BindTarget): Promise<{ port: number }> {
  return new Promise((resolve, reject) => {
    const address = formatBindTarget(target);
    const onError = (cause: NodeJS.ErrnoException): void => {
      if (cause.code === 'EADDRINUSE') reject(new ServerError('W2N_ERR_LISTEN_IN_USE', { address }, { cause }));
      else if (cause.code === 'EACCES') reject(new ServerError('W2N_ERR_LISTEN_DENIED', { address }, { cause }));
      else reject(new ServerError('W2N_ERR_LISTEN_FAILED', { address, reason: cause.message }, { cause }));
    };
    server.once('error', onError);
    const options = 'path' in target ? { path: target.path, backlog: 2048 } : { host: target.ip, port: target.port, backlog: 2048 };
    server.listen(options, () => {
      server.off('error', onError);
      const bound = server.address();
      resolve({ port: typeof bound === 'object' && bound !== null ? bound.port : 0 });
    });
  });
}
