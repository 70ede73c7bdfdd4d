/**
 * @module Every listener of a front, opened together and closed together.
 *
 * The primary binds the sockets (src/primary/bound-sockets.ts); a front inherits their
 * descriptors and listens on them. `ListenerSet.open` reads every TLS file first, then listens
 * on each inherited socket in order; if any fails, the ones already open are closed before the
 * error goes up. Closing a listener here closes this front's descriptors only: the socket, its
 * accept queue and a Unix socket's file belong to the primary. Each listener has its own request handler,
 * made for its own facts: SERVER_NAME and SERVER_PORT (the listener's address and bound port),
 * wsgi.url_scheme and HTTPS. On a Unix socket, SERVER_NAME is `localhost` and SERVER_PORT the
 * first TCP listener's port (else `-p`): web2py's admin reads `parameters_<SERVER_PORT>.py`, and
 * PEP 3333 wants neither empty.
 */
import type { Server as HttpServer } from 'node:http';
import { Server as NetServer, type Socket } from 'node:net';
import type { Logger } from '../observability/log.js';
import { LogEvents } from '../observability/events.js';
import type { ListenerFacts } from './environ.js';
import type { RequestHandler } from './handler.js';
import { Http2Sessions } from './http2-sessions.js';
import { formatBindTarget, isAppListener, type ListenerSpec } from './listen-plan.js';
import {
  createListener, isHttp2Server, listenOnDescriptor, LISTEN_BACKLOG,
  type Http2Options, type ListenerLimits, type NodeServer,
} from './listeners.js';
import { tlsFromPem, type LoadedTls, type TlsPem } from './tls-files.js';
import type { ProxyTrust } from './proxy-trust.js';
import type { ClientRejections } from './client-errors.js';
import type { ConnectionLimit } from './connection-limit.js';
import { closeCopies, listenCopies } from './accept-copies.js';
import type { UpgradeTaker } from './upgrade.js';
import type { Component } from '../lifecycle/lifecycle.js';
import type { InFlight } from '../lifecycle/in-flight.js';

/** One socket the primary bound, as this front inherited it. */
export interface InheritedSocket {
  /** This front's descriptors of the socket: the listener's own, then its `--accept-batch` copies. */
  readonly fds: readonly number[];
  /** The bound port (TCP; the one chosen for port 0), 0 for a Unix socket. */
  readonly port: number;
  /** Its certificate and key, read and checked by the primary (null: plain). */
  readonly tls: TlsPem | null;
}

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
  handlerFor: (facts: ListenerFacts, spec: ListenerSpec) => RequestHandler;
  /** Takes the WebSocket upgrades it wants of a listener (the realtime hub); null: none. */
  upgradesFor: (spec: ListenerSpec) => UpgradeTaker | null;
  /** SERVER_PORT on a Unix socket when there is no TCP listener (`-p`). */
  fallbackPort: number;
  /** The socket of each spec, in the same order. */
  inherited: readonly InheritedSocket[];
}

/** SERVER_NAME of requests that came over a Unix socket. */
const UNIX_SERVER_NAME = 'localhost';
/** A front handing over to a new one (SIGHUP) closes the connections still idle after this. */
const HANDOVER_IDLE_MS = 2_000;

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
  /** More descriptors of the listening socket (`--accept-batch`), closed with it. */
  copies: NetServer[];
}

export class ListenerSet {
  /** During a stop: whether a connection is closed as soon as it is idle (not while handing over). */
  private isClosingIdle = false;

  private constructor(private readonly listeners: readonly OpenListener[], private readonly log: Logger) {}

  /** Binds every listener, or none: on any failure the bound ones are closed and the error rethrown. */
  static async open(specs: readonly ListenerSpec[], options: ListenerSetOptions): Promise<ListenerSet> {
    // Every certificate and key was read and checked by the primary before it bound anything.
    const loaded = specs.map((spec, index) => {
      const pem = options.inherited[index]?.tls ?? null;
      return spec.kind === 'tcp' && spec.tls !== null && pem !== null ? tlsFromPem(pem) : null;
    });
    const opened: OpenListener[] = [];
    const set = new ListenerSet(opened, options.log);
    try {
      for (const [index, spec] of specs.entries()) {
        const socket = options.inherited[index];
        if (socket === undefined || socket.fds.length === 0) throw new Error(`no inherited socket for listener ${index}`);
        const withPort: ListenerSpec = spec.kind === 'tcp' ? { ...spec, port: socket.port } : spec;
        const listener = ListenerSet.create(withPort, loaded[index] ?? null, options, opened);
        opened.push(listener); // closeAll() below closes it too if listening fails half-way
        const [own, ...copies] = socket.fds;
        await listenOnDescriptor(listener.server, own!, LISTEN_BACKLOG);
        listener.copies = listenCopies(listener.server, copies, LISTEN_BACKLOG);
      }
    } catch (error: unknown) {
      set.closeAll();
      throw error;
    }
    return set;
  }

  private static create(spec: ListenerSpec, tls: LoadedTls | null, options: ListenerSetOptions, opened: readonly OpenListener[]): OpenListener {
    const firstTcp = opened.find((listener) => listener.spec.kind === 'tcp' && isAppListener(listener.spec));
    const facts: ListenerFacts = spec.kind === 'tcp'
      ? { serverName: spec.ip, serverPort: String(spec.port), isTls: tls !== null, clientCertificates: tls?.ca != null, proxies: options.proxies }
      : { serverName: UNIX_SERVER_NAME, serverPort: firstTcp?.facts.serverPort ?? String(options.fallbackPort), isTls: false, isUnixSocket: true, proxies: options.proxies };
    const http2 = tls === null ? null : options.http2;
    const server = createListener(options.handlerFor(facts, spec), {
      limits: options.limits, tls, http2, rejections: options.rejections, takeUpgrade: options.upgradesFor(spec),
    });
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
    return { spec, server, facts, tls, sessions, sockets, label, copies: [] };
  }

  /** The bound TCP ports, in order, without repeats (one admin password file each). */
  get tcpPorts(): number[] {
    return [...new Set(this.listeners.filter((l) => l.spec.kind === 'tcp' && isAppListener(l.spec)).map((l) => Number(l.facts.serverPort)))];
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
   * Graceful stop, first step: no new connections; HTTP/2 sessions get GOAWAY; idle HTTP/1.1
   * ones close, unless `keepIdle` (another front takes over: each idle connection is closed
   * by the `Connection: close` of its next answer instead, so a client that sends its next
   * request just as we would have closed it never sees a reset).
   */
  stopAccepting({ keepIdle = false } = {}): void {
    for (const listener of this.listeners) {
      // http's close() also closes every idle connection (Node 19+); net's stops listening only.
      if (listener.server.listening) {
        if (keepIdle) NetServer.prototype.close.call(listener.server);
        else listener.server.close();
      }
      closeCopies(listener.copies);
      listener.sessions?.closeGracefully();
    }
    if (!keepIdle) this.closeIdle();
  }

  /**
   * The listeners' part of a graceful stop (src/lifecycle). `responses`: the front's responses in
   * flight; while a stop drains, a connection whose answer just ended is idle, and is closed then.
   * Handing over to another front (`handOver`), connections are not cut the moment they are idle:
   * each in use is closed by the `Connection: close` of its next answer, and those still idle
   * after HANDOVER_IDLE_MS have been idle since before the stop: closing them then races only with
   * a client that sends on a long-idle connection at that very moment (as any idle close does),
   * instead of keeping this front and its workers for them.
   */
  stopSteps(responses: InFlight): Component {
    responses.onClose(() => {
      if (this.isClosingIdle) this.closeIdle();
    });
    return {
      stopAccepting: ({ handOver }) => {
        this.isClosingIdle = !handOver;
        this.stopAccepting({ keepIdle: handOver });
      },
      drain: async ({ handOver, deadline }) => {
        if (!handOver) return;
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.min(HANDOVER_IDLE_MS, deadline - Date.now()))));
        this.isClosingIdle = true;
        this.closeIdle();
      },
      close: () => this.closeAll(),
      kill: () => this.closeAll(),
    };
  }

  /** Closes HTTP/1.1 connections that wait between requests (while draining). */
  closeIdle(): void {
    // The HTTP/2 server has it too (for its HTTP/1.1 connections), though @types/node 20 omits it.
    for (const listener of this.listeners) (listener.server as HttpServer).closeIdleConnections();
  }

  /** Cuts every connection now and stops listening (the primary keeps the sockets). */
  closeAll(): void {
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
    }
  }
}
