/**
 * @module Every listener of the server, opened together and closed together.
 *
 * `ListenerSet.open` reads every TLS file first, then binds each listener in order; if any bind
 * fails, the ones already bound are closed (and a Unix socket file removed) before the error
 * goes up, so a bad start leaves nothing listening. Each listener has its own request handler,
 * made for its own facts: SERVER_NAME and SERVER_PORT (the listener's address and bound port),
 * wsgi.url_scheme and HTTPS. On a Unix socket, SERVER_NAME is `localhost` and SERVER_PORT the
 * first TCP listener's port (else `-p`): web2py's admin reads `parameters_<SERVER_PORT>.py`, and
 * PEP 3333 wants neither empty.
 */
import type { Server as HttpServer } from 'node:http';
import type { Server as NetServer, Socket } from 'node:net';
import type { Logger } from '../observability/log.js';
import { LogEvents } from '../observability/events.js';
import type { ListenerFacts } from './environ.js';
import type { RequestHandler } from './handler.js';
import { Http2Sessions } from './http2-sessions.js';
import type { ListenerSpec } from './listen-plan.js';
import {
  createListener, formatBindTarget, isHttp2Server, listen, LISTEN_BACKLOG, loadTls, secureContextOptions,
  type Http2Options, type ListenerLimits, type LoadedTls, type NodeServer,
} from './listeners.js';
import type { ProxyTrust } from './proxy-trust.js';
import type { ClientRejections } from './client-errors.js';
import type { ConnectionLimit } from './connection-limit.js';
import { claimSocketFile, clearStaleSocket, removeSocketFile } from './unix-socket.js';
import { addAcceptCopies, closeCopies } from './accept-copies.js';

export interface ListenerSetOptions {
  limits: ListenerLimits;
  /** HTTP/2 on TLS listeners; null = `--http2 off`. */
  http2: Http2Options | null;
  log: Logger;
  /** Answers what Node's parser refuses, on every listener. */
  rejections: ClientRejections;
  /** `--max-connections`, one count across every listener. */
  connectionLimit: ConnectionLimit;
  /** Trusted reverse proxies (`--trusted-proxies`); null: none. */
  proxies: ProxyTrust | null;
  /** Makes one listener's request handler; `facts` may still change until `open` resolves (port 0). */
  handlerFor: (facts: ListenerFacts) => RequestHandler;
  /** SERVER_PORT on a Unix socket when there is no TCP listener (`-p`). */
  fallbackPort: number;
}

/** SERVER_NAME of requests that came over a Unix socket. */
const UNIX_SERVER_NAME = 'localhost';

interface OpenListener {
  readonly spec: ListenerSpec;
  readonly server: NodeServer;
  readonly facts: ListenerFacts;
  readonly tls: LoadedTls | null;
  /** HTTP/2 sessions (TLS listeners with HTTP/2 on). */
  readonly sessions: Http2Sessions | null;
  /** Connections of an HTTP/2 server, which has no closeAllConnections of its own. */
  readonly sockets: Set<Socket>;
  /** `127.0.0.1:8000`, `[::1]:8443`, `unix:/run/app.sock`, with the bound port. */
  label: string;
  /** The socket file's inode (Unix socket listeners). */
  inode: number | null;
  /** More descriptors of the listening socket (`--accept-batch`), closed with it. */
  copies: NetServer[];
}

export class ListenerSet {
  /** False once stopAccepting or closeAll ran: accept copies that arrive later are closed at once. */
  private isAccepting = true;

  private constructor(private readonly listeners: readonly OpenListener[], private readonly log: Logger) {}

  /** Binds every listener, or none: on any failure the bound ones are closed and the error rethrown. */
  static async open(specs: readonly ListenerSpec[], options: ListenerSetOptions): Promise<ListenerSet> {
    // Every certificate and key is read (and checked) before anything binds.
    const loaded = specs.map((spec) => (spec.kind === 'tcp' && spec.tls !== null ? loadTls(spec.tls) : null));
    const opened: OpenListener[] = [];
    const set = new ListenerSet(opened, options.log);
    try {
      for (const [index, spec] of specs.entries()) {
        const listener = ListenerSet.create(spec, loaded[index] ?? null, options, opened);
        if (spec.kind === 'unix') await clearStaleSocket(spec.path);
        opened.push(listener); // closeAll() below closes it too if the bind fails half-way
        const target = spec.kind === 'tcp' ? { ip: spec.ip, port: spec.port } : { path: spec.path };
        const { port } = await listen(listener.server, target);
        if (spec.kind === 'tcp') {
          listener.facts.serverPort = String(port);
          listener.label = formatBindTarget({ ip: spec.ip, port });
        } else {
          listener.inode = claimSocketFile(spec.path, spec.mode);
        }
      }
    } catch (error: unknown) {
      set.closeAll();
      throw error;
    }
    return set;
  }

  private static create(spec: ListenerSpec, tls: LoadedTls | null, options: ListenerSetOptions, opened: readonly OpenListener[]): OpenListener {
    const firstTcp = opened.find((listener) => listener.spec.kind === 'tcp');
    const facts: ListenerFacts = spec.kind === 'tcp'
      ? { serverName: spec.ip, serverPort: String(spec.port), isTls: tls !== null, clientCertificates: tls?.ca != null, proxies: options.proxies }
      : { serverName: UNIX_SERVER_NAME, serverPort: firstTcp?.facts.serverPort ?? String(options.fallbackPort), isTls: false, isUnixSocket: true, proxies: options.proxies };
    const http2 = tls === null ? null : options.http2;
    const server = createListener(options.handlerFor(facts), { limits: options.limits, tls, http2, rejections: options.rejections });
    const sockets = new Set<Socket>();
    let sessions: Http2Sessions | null = null;
    if (isHttp2Server(server)) {
      sessions = new Http2Sessions(server, {
        firstRequestTimeoutMs: options.limits.headersTimeoutMs,
        idleTimeoutMs: options.limits.keepAliveTimeoutMs,
        requestTimeoutMs: options.limits.requestTimeoutMs,
      }, options.log);
      server.on('secureConnection', (socket: Socket) => {
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
      });
    }
    // Last: it wraps the connection listeners registered so far, so a refused connection reaches none of them.
    options.connectionLimit.attach(server);
    const label = spec.kind === 'tcp' ? formatBindTarget({ ip: spec.ip, port: spec.port }) : formatBindTarget({ path: spec.path });
    return { spec, server, facts, tls, sessions, sockets, label, inode: null, copies: [] };
  }

  /** The bound TCP ports, in order, without repeats (one admin password file each). */
  get tcpPorts(): number[] {
    return [...new Set(this.listeners.filter((l) => l.spec.kind === 'tcp').map((l) => Number(l.facts.serverPort)))];
  }

  /** SERVER_PORT of the Unix socket listener, if any (its password file). */
  get unixServerPort(): number | null {
    const unix = this.listeners.find((l) => l.spec.kind === 'unix');
    return unix === undefined ? null : Number(unix.facts.serverPort);
  }

  /** The first listener: the address `RunningServer.address` reports. */
  get main(): { ip: string; port: number } {
    const first = this.listeners[0]!;
    return first.spec.kind === 'tcp' ? { ip: first.spec.ip, port: Number(first.facts.serverPort) } : { ip: first.label, port: 0 };
  }

  /** One `starting on ...` line per listener, as the seed prints its one. */
  startingLines(): string[] {
    return this.listeners.map((listener) => `starting on ${listener.label}...`);
  }

  /** The `TLS: ...` start-up line. */
  tlsLine(): string {
    const secure = this.listeners.filter((listener) => listener.tls !== null);
    if (secure.length === 0) return 'TLS: off (plain HTTP)';
    const where = secure.length === this.listeners.length ? '' : ` for ${secure.map((listener) => listener.label).join(', ')}`;
    const protocols = secure.some((listener) => listener.sessions !== null)
      ? 'HTTP/2 and HTTP/1.1 by ALPN' : 'HTTP/1.1 only, --http2 off';
    const clients = secure.some((listener) => listener.tls?.ca != null) ? '; client certificates asked for where a CA is given' : '';
    return `TLS: on${where} (TLS 1.2 and newer; ${protocols}${clients})`;
  }

  logListening(): void {
    for (const listener of this.listeners) {
      LogEvents.serverListening(this.log, { address: listener.label, tls: listener.tls !== null, http2: listener.sessions !== null });
    }
  }

  /**
   * `--accept-batch`: more descriptors of every TCP listening socket, so that one event-loop turn
   * accepts up to `batch` connections (accept-copies.ts). Called once the listeners are open and
   * run while the workers start: the helper process takes about 100 ms, which used to delay
   * readiness; until it is done each listener accepts one connection per turn. TCP only: Node
   * cannot listen again on a received Unix socket descriptor (EEXIST).
   */
  async widenAccept(batch: number): Promise<void> {
    const tcp = this.listeners.filter((listener) => listener.spec.kind === 'tcp');
    const { copies, problem } = await addAcceptCopies(tcp.map((listener) => listener.server), batch, LISTEN_BACKLOG);
    for (const [index, listener] of tcp.entries()) {
      listener.copies = copies[index] ?? [];
      if (!this.isAccepting) closeCopies(listener.copies); // stopped meanwhile
    }
    if (problem !== null) LogEvents.acceptBatchUnavailable(this.log, { reason: problem });
  }

  /** Graceful stop, first step: no new connections; HTTP/2 sessions get GOAWAY; idle HTTP/1.1 ones close. */
  stopAccepting(): void {
    this.isAccepting = false;
    for (const listener of this.listeners) {
      listener.server.close();
      closeCopies(listener.copies);
      listener.sessions?.closeGracefully();
    }
    this.closeIdle();
  }

  /** Closes HTTP/1.1 connections that wait between requests (while draining). */
  closeIdle(): void {
    // The HTTP/2 server has it too (for its HTTP/1.1 connections), though @types/node 20 omits it.
    for (const listener of this.listeners) (listener.server as HttpServer).closeIdleConnections();
  }

  /** Cuts every connection now, stops listening, removes socket files. */
  closeAll(): void {
    this.isAccepting = false;
    for (const listener of this.listeners) {
      const { server } = listener;
      if (server.listening) server.close();
      closeCopies(listener.copies);
      if (isHttp2Server(server)) {
        listener.sessions?.destroyAll();
        for (const socket of listener.sockets) socket.destroy();
      } else {
        server.closeAllConnections();
      }
      if (listener.spec.kind === 'unix' && listener.inode !== null) removeSocketFile(listener.spec.path, listener.inode);
    }
  }

  /** SIGHUP: re-reads each TLS listener's files; a listener whose new files are bad keeps the old ones. */
  reloadTls(): 'reloaded' | 'kept' | 'off' {
    const secure = this.listeners.filter((listener) => listener.tls !== null && listener.spec.kind === 'tcp');
    if (secure.length === 0) return 'off';
    let outcome: 'reloaded' | 'kept' = 'reloaded';
    for (const listener of secure) {
      const files = (listener.spec as Extract<ListenerSpec, { kind: 'tcp' }>).tls!;
      try {
        const fresh = loadTls(files);
        (listener.server as import('node:tls').Server).setSecureContext(secureContextOptions(fresh));
      } catch (error: unknown) {
        LogEvents.tlsReloadFailed(this.log, { reason: `${listener.label}: ${error instanceof Error ? error.message : String(error)}` });
        outcome = 'kept';
      }
    }
    return outcome;
  }
}
