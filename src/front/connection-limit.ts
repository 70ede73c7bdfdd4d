/**
 * @module `--max-connections`: one count of open client connections across every listener, and a
 * clean refusal past it.
 *
 * Node's own `server.maxConnections` destroys the extra socket: the client sees a reset, not a
 * reason. Past the limit here, a connection is answered `503 Service Unavailable` with
 * `Retry-After` and `Connection: close`, and is never handed to the HTTP server: no parser, no
 * request, nothing reaches the application. The limit is there so that a flood of idle or slow
 * connections cannot use up the front's memory and file descriptors and starve everyone; a
 * refused client learns at once that it should come back, instead of waiting unseen in the
 * kernel's accept backlog.
 *
 * One `ConnectionLimit` is shared by all listeners: each calls `attach(server)` right after
 * creating it. A TLS connection is counted from its TCP accept, as any other: counted only once
 * its handshake was done, a thousand idle TCP connections on a TLS port (Node gives a handshake
 * 120 s) would hold every listener's descriptors and never be refused. Past the limit it is
 * still let through its handshake and refused then, so the 503 can be read inside TLS. A TLS
 * connection must also complete its handshake and send its first request head within
 * `--headers-timeout` of its accept (the server's `headersTimeout`): else it is answered 408 (or
 * just closed, with no TLS yet or on HTTP/2) and closed.
 */
import { readFileSync } from 'node:fs';
import type { Server as NetServer, Socket } from 'node:net';
import { Server as TlsServer, type TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import { LogEvents } from '../observability/events.js';
import type { Logger } from '../observability/log.js';
import type { ClientRejections } from './client-errors.js';

/** Refused connections still lingering (reading what the client sends before it closes); past this, refusals are a plain close. */
const MAX_LINGERING_REFUSALS = 1024;
/** Accept errors (EMFILE when out of file descriptors) are logged at most this often. */
const ACCEPT_ERROR_LOG_INTERVAL_MS = 10_000;
/** Descriptors the front needs besides client connections: workers' channels and pipes, logs, static files. */
const SPARE_DESCRIPTORS = 256;

export class ConnectionLimit {
  #open = 0;
  #lingering = 0;
  #isInBurst = false;
  #lastAcceptErrorAt = -Infinity;

  readonly #onClose = (): void => { this.#open -= 1; };
  /** TCP connections of TLS listeners that have not sent a request head yet, and their TLS side once there. */
  readonly #unproven = new WeakMap<object, { timer: NodeJS.Timeout; secure: TLSSocket | null; isRefused: boolean }>();

  constructor(
    readonly max: number,
    private readonly rejections: ClientRejections,
    private readonly log: Logger,
  ) {}

  /** Client connections open now, across every attached server. */
  get open(): number {
    return this.#open;
  }

  /**
   * Puts the limit in front of `server`'s own connection handling. The HTTP server's listener is
   * taken off the event it listens on (`connection`, or `secureConnection` for TLS) and called
   * only for admitted connections. Also logs accept errors, which Node would otherwise throw and
   * which would stop the process (EMFILE when `ulimit -n` is reached).
   */
  attach(server: NetServer): void {
    if (server instanceof TlsServer) {
      this.#attachTls(server);
    } else {
      const own = server.listeners('connection') as ((socket: Duplex) => void)[];
      server.removeAllListeners('connection');
      server.on('connection', (socket: Duplex) => {
        if (this.#open >= this.max) {
          this.#refuse(socket);
          return;
        }
        this.#admit(socket);
        for (const listener of own) listener.call(server, socket);
      });
    }
    server.on('error', (error: NodeJS.ErrnoException) => {
      if (!server.listening) return; // a bind error: listen() reports it
      const now = Date.now();
      if (now - this.#lastAcceptErrorAt < ACCEPT_ERROR_LOG_INTERVAL_MS) return;
      this.#lastAcceptErrorAt = now;
      LogEvents.acceptFailed(this.log, { code: error.code ?? '', message: error.message });
    });
  }

  #admit(socket: Duplex): void {
    this.#open += 1;
    this.#isInBurst = false;
    // One shared listener (not a closure per socket): every idle connection holds it.
    socket.on('close', this.#onClose);
  }

  /**
   * TLS: counted at TCP accept (`connection`), refused past the limit once the handshake is done
   * (`secureConnection`), and given `headersTimeout` from accept to send a whole first head.
   */
  #attachTls(server: TlsServer): void {
    const headersTimeoutMs = 'headersTimeout' in server && typeof server.headersTimeout === 'number' ? server.headersTimeout : 0;
    const ownTcp = server.listeners('connection') as ((socket: Socket) => void)[];
    server.removeAllListeners('connection');
    server.on('connection', (socket: Socket) => {
      let isRefused = false;
      if (this.#open >= this.max) {
        if (this.#lingering >= MAX_LINGERING_REFUSALS) {
          this.#refuse(socket);
          return;
        }
        isRefused = true;
        this.#noteFull();
        this.#lingering += 1;
        socket.once('close', () => { this.#lingering -= 1; });
      } else {
        this.#admit(socket);
      }
      if (headersTimeoutMs > 0) {
        const timer = setTimeout(() => this.#missedDeadline(socket), headersTimeoutMs);
        timer.unref();
        this.#unproven.set(socket, { timer, secure: null, isRefused });
        socket.once('close', () => this.#proven(socket));
      }
      for (const listener of ownTcp) listener.call(server, socket);
    });
    const ownSecure = server.listeners('secureConnection') as ((socket: TLSSocket) => void)[];
    server.removeAllListeners('secureConnection');
    server.on('secureConnection', (socket: TLSSocket) => {
      const tcp = tcpSocketOf(socket);
      const state = tcp === null ? undefined : this.#unproven.get(tcp);
      if (state !== undefined) state.secure = socket;
      if (state?.isRefused === true) {
        this.#proven(tcp!);
        this.rejections.refuseConnection(socket, 'W2N_ERR_TOO_MANY_CONNECTIONS', { open: this.#open }, 'Retry-After: 1\r\n');
        socket.resume();
        return;
      }
      for (const listener of ownSecure) listener.call(server, socket);
    });
    // A whole head arrived (HTTP/1.1 request, or an HTTP/2 stream's): the deadline is met.
    const onHead = (req: { socket: unknown }): void => {
      const tcp = tcpSocketOf(req.socket);
      if (tcp !== null) this.#proven(tcp);
    };
    server.on('request', onHead);
    server.on('checkContinue', onHead);
    // HTTP/2: every stream's head, also one answered before Node's compatibility layer emits a
    // 'request' for it (front/http2-static.ts).
    server.on('stream', (stream: { session?: { socket?: unknown } | undefined }) => onHead({ socket: stream.session?.socket }));
  }

  #proven(tcp: object): void {
    const state = this.#unproven.get(tcp);
    if (state === undefined) return;
    clearTimeout(state.timer);
    this.#unproven.delete(tcp);
  }

  /** No TLS handshake and first head within --headers-timeout of the accept: 408 where it can be read, else a close. */
  #missedDeadline(tcp: Socket): void {
    const state = this.#unproven.get(tcp);
    this.#unproven.delete(tcp);
    if (tcp.destroyed) return;
    const reason = state?.secure == null ? 'no TLS handshake within --headers-timeout' : 'no request head within --headers-timeout of the connection';
    if (state?.secure != null && state.secure.alpnProtocol !== 'h2' && !state.isRefused) {
      this.rejections.refuseConnection(state.secure, 'W2N_ERR_CLIENT_TIMEOUT', { reason });
      return;
    }
    this.rejections.cutConnection(state?.secure ?? tcp, 'W2N_ERR_CLIENT_TIMEOUT', { reason });
  }

  #noteFull(): void {
    if (this.#isInBurst) return;
    this.#isInBurst = true;
    LogEvents.connectionsFull(this.log, { open: this.#open, limit: this.max });
  }

  #refuse(socket: Duplex): void {
    this.#noteFull();
    if (this.#lingering >= MAX_LINGERING_REFUSALS) {
      socket.on('error', () => {});
      socket.destroy();
      return;
    }
    this.#lingering += 1;
    socket.once('close', () => { this.#lingering -= 1; });
    this.rejections.refuseConnection(socket, 'W2N_ERR_TOO_MANY_CONNECTIONS', { open: this.#open }, 'Retry-After: 1\r\n');
    // Nobody else reads this socket: read and drop, so the client's close (or its request) is seen.
    socket.resume();
  }
}

/**
 * The TCP socket under a TLS socket (Node keeps it as `_parent`; an HTTP/2 request's socket is a
 * proxy that reads it from the session's TLS socket); null when there is none.
 */
function tcpSocketOf(socket: unknown): object | null {
  if (typeof socket !== 'object' || socket === null) return null;
  const parent: unknown = Reflect.get(socket, '_parent');
  return typeof parent === 'object' && parent !== null ? parent : null;
}

/** Warns when `ulimit -n` is too low for `--max-connections` (Linux: /proc/self/limits; elsewhere silent). */
export function warnIfFileLimitLow(maxConnections: number, log: Logger): void {
  let limits: string;
  try {
    limits = readFileSync('/proc/self/limits', 'latin1');
  } catch {
    return;
  }
  const soft = /^Max open files\s+(\d+|unlimited)/m.exec(limits)?.[1];
  if (soft === undefined || soft === 'unlimited') return;
  const openFilesLimit = Number(soft);
  if (openFilesLimit < maxConnections + SPARE_DESCRIPTORS) LogEvents.fileLimitLow(log, { maxConnections, openFilesLimit });
}
