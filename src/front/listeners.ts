/**
 * @module The listening sockets: HTTP or HTTPS servers, their limits, and bad-input answers.
 *
 * Node's llhttp parser is strict (no smuggling: Content-Length with Transfer-Encoding, bad
 * chunk sizes, obs-fold and bare LF are rejected); we keep it strict and give every rejection a
 * clear status (400, 408, 431) and a closed connection instead of Node's bare socket close.
 */
import { createServer as createHttpServer, STATUS_CODES, type Server as HttpServer, type ServerOptions } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createSecureContext, type SecureContext } from 'node:tls';
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { ServerError } from '../errors/index.js';
import { LogEvents } from '../observability/events.js';
import type { Logger } from '../observability/log.js';
import type { RequestHandler } from './handler.js';

export interface TlsFiles {
  certificateFile: string;
  privateKeyFile: string;
}

export interface LoadedTls {
  cert: Buffer;
  key: Buffer;
  context: SecureContext;
}

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
  try {
    const context = createSecureContext({ cert, key, minVersion: 'TLSv1.2' });
    return { cert, key, context };
  } catch (cause: unknown) {
    const message = (cause as Error).message;
    const reason = /mismatch/i.test(message)
      ? `the private key ${files.privateKeyFile} does not belong to the certificate ${files.certificateFile}`
      : `cannot use certificate ${files.certificateFile} with key ${files.privateKeyFile}: ${message}`;
    throw new ServerError('W2N_ERR_TLS', { reason }, { cause });
  }
}

const clientErrorStatus: Record<string, number> = {
  HPE_HEADER_OVERFLOW: 431,
  ERR_HTTP_REQUEST_TIMEOUT: 408,
  HPE_URI_TOO_LONG: 414,
};

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

export function createListener(handler: RequestHandler, limits: ListenerLimits, tls: LoadedTls | null, log: Logger): HttpServer {
  const options: ServerOptions = {
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    noDelay: true,
    requireHostHeader: true,
    insecureHTTPParser: false,
  };
  const server: HttpServer = tls === null
    ? createHttpServer(options, handler)
    : createHttpsServer({ ...options, cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' }, handler);
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.maxHeadersCount = 200;
  server.on('clientError', (error: Error & { code?: string }, socket: Duplex) => answerClientError(error, socket, log));
  // `Expect: 100-continue`: Node would send the 100 at once; the handler sends it when the body
  // is really going to be read, and never for a body it refuses (front/request-body.ts).
  server.on('checkContinue', handler);
  return server;
}

/** Binds; address problems become one clear ServerError. */
export function listen(server: HttpServer, ip: string, port: number): Promise<{ ip: string; port: number }> {
  return new Promise((resolve, reject) => {
    const address = `${ip.includes(':') ? `[${ip}]` : ip}:${port}`;
    const onError = (cause: NodeJS.ErrnoException): void => {
      if (cause.code === 'EADDRINUSE') reject(new ServerError('W2N_ERR_LISTEN_IN_USE', { address }, { cause }));
      else if (cause.code === 'EACCES') reject(new ServerError('W2N_ERR_LISTEN_DENIED', { address }, { cause }));
      else reject(new ServerError('W2N_ERR_LISTEN_FAILED', { address, reason: cause.message }, { cause }));
    };
    server.once('error', onError);
    server.listen({ host: ip, port, backlog: 2048 }, () => {
      server.off('error', onError);
      const bound = server.address();
      resolve(typeof bound === 'object' && bound !== null ? { ip: bound.address, port: bound.port } : { ip, port });
    });
  });
}
