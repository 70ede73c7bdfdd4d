/**
 * @module The listening sockets: HTTP or HTTPS servers, their limits, and bad-input answers.
 *
 * Node's llhttp parser is strict (no smuggling: Content-Length with Transfer-Encoding, bad
 * chunk sizes, obs-fold and bare LF are rejected); we keep it strict and give every rejection a
 * clear status (400, 408, 414, 431) and a closed connection instead of Node's bare socket close
 * (client-errors.ts). The head checks llhttp does not make are in request-checks.ts.
 */
import { createServer as createHttpServer, type Server as HttpServer, type ServerOptions } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createSecureContext, type SecureContext } from 'node:tls';
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { ServerError } from '../errors/index.js';
import type { RequestHandler } from './handler.js';
import type { ClientError, ClientRejections } from './client-errors.js';

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
  /** `--max-headers`: Node keeps this many in `req.headers`; request-checks.ts refuses more. */
  maxHeaders: number;
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

export function createListener(handler: RequestHandler, limits: ListenerLimits, tls: LoadedTls | null, rejections: ClientRejections): HttpServer {
  const requestTimeout = Math.round(limits.requestTimeoutMs);
  // Node refuses a head deadline longer than the whole-request one; the shorter one wins anyway.
  const headersTimeout = requestTimeout > 0 ? Math.min(Math.round(limits.headersTimeoutMs), requestTimeout) : Math.round(limits.headersTimeoutMs);
  const options: ServerOptions = {
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
  const server: HttpServer = tls === null
    ? createHttpServer(options, handler)
    : createHttpsServer({ ...options, cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' }, handler);
  server.keepAliveTimeout = options.keepAliveTimeout!;
  server.maxHeadersCount = limits.maxHeaders;
  server.on('clientError', (error: ClientError, socket: Duplex) => rejections.onClientError(error, socket));
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
