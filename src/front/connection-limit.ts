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
 * creating it. A TLS connection is counted once its handshake is done (when the HTTP server
 * receives it), so the refusal can be read by the client.
 */
import { readFileSync } from 'node:fs';
import type { Server as NetServer } from 'node:net';
import { Server as TlsServer } from 'node:tls';
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
    const event = server instanceof TlsServer ? 'secureConnection' : 'connection';
    const own = server.listeners(event) as ((socket: Duplex) => void)[];
    server.removeAllListeners(event);
    server.on(event, (socket: Duplex) => {
      if (this.#open >= this.max) {
        this.#refuse(socket);
        return;
      }
      this.#open += 1;
      this.#isInBurst = false;
      // One shared listener (not a closure per socket): every idle connection holds it.
      socket.on('close', this.#onClose);
      for (const listener of own) listener.call(server, socket);
    });
    server.on('error', (error: NodeJS.ErrnoException) => {
      if (!server.listening) return; // a bind error: listen() reports it
      const now = Date.now();
      if (now - this.#lastAcceptErrorAt < ACCEPT_ERROR_LOG_INTERVAL_MS) return;
      this.#lastAcceptErrorAt = now;
      LogEvents.acceptFailed(this.log, { code: error.code ?? '', message: error.message });
    });
  }

  #refuse(socket: Duplex): void {
    if (!this.#isInBurst) {
      this.#isInBurst = true;
      LogEvents.connectionsFull(this.log, { open: this.#open, limit: this.max });
    }
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
