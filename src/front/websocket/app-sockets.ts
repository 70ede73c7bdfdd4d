/**
 * @module The applications' WebSockets of one front (`environ['wsgi.websocket']`): which upgrades
 * go to the application, their limits, keep-alive, and their close on a stop.
 *
 * An `Upgrade: websocket` request that the realtime hub does not take comes here (upgrade.ts).
 * One that is no valid handshake (no well-formed key, another version, a body) is left to be an
 * ordinary request, as before. A valid handshake the front would refuse anyway is answered
 * before the application sees it (403 origin, 503 full or stopping); else it is served by the
 * listener's request handler on a ServerResponse of its own, with the request remembered
 * (`candidates`) so that the handler gives its exchange an AppWebSocket sink (`sinkFor`): the
 * REQUEST goes out with FLAG_UPGRADE, and the application either accepts (101) or answers with
 * HTTP (then the connection closes).
 *
 * Limits are the realtime hub's settings: `--realtime-max-message` (a larger client message is
 * closed 1009 by ws), `--realtime-send-buffer` (1013), `--realtime-ping-interval`,
 * `--realtime-origins`, and one count with the hub's members within `--realtime-max-connections`.
 * Compression is off (as the hub's default, for the same reasons; and the front would compress
 * each message of a busy application for one client at a time).
 */
import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import { LogEvents } from '../../observability/events.js';
import type { Logger } from '../../observability/log.js';
import type { AppWebSocketCounters } from '../../observability/metrics.js';
import { MAX_PAYLOAD } from '../../protocol/frames.js';
import type { ResponseSink } from '../../pool/exchange.js';
import type { HttpResponseSink } from '../response-sink.js';
import { AppWebSocket, type AppSocketHost } from './app-socket.js';
import { CLOSE_WAIT_MS, asksForWebSocket, closeThenCut, hasWellFormedProtocols, isValidHandshake, refuseUpgrade, type Refusal } from './handshake.js';
import { createWebSocketServer } from './ws-server.js';

export interface AppWebSocketOptions {
  maxMessageBytes: number;
  sendBufferBytes: number;
  /** 0: no pings. */
  pingIntervalMs: number;
  /** null: any origin. */
  origins: ReadonlySet<string> | null;
  /** With the realtime hub's members (countWith). */
  maxConnections: number;
  log: Logger;
  counters: AppWebSocketCounters;
}

/** Serves a request as Node's HTTP server would (the listener's request handler). */
export type ServeRequest = (req: IncomingMessage, res: ServerResponse) => void;

/** The subprotocol the application chose, read by handleProtocols during handleUpgrade. */
const CHOSEN_PROTOCOL = Symbol('chosenProtocol');
type UpgradingRequest = IncomingMessage & { [CHOSEN_PROTOCOL]?: string | null };

export class AppWebSockets implements AppSocketHost {
  readonly log: Logger;
  readonly sendBufferBytes: number;
  /** Made (and `ws` imported) on the first handshake that reaches the application (ws-server.ts). */
  private server: WebSocketServer | null = null;
  private serverComing: Promise<WebSocketServer> | null = null;
  /** Offered to the application or open: what counts against the limit. */
  private readonly counted = new Set<AppWebSocket>();
  private readonly open = new Set<AppWebSocket>();
  private readonly candidates = new WeakMap<IncomingMessage, { socket: Duplex; head: Buffer }>();
  private readonly upgrading = new WeakMap<Duplex, { req: UpgradingRequest; head: Buffer }>();
  private readonly timer: NodeJS.Timeout | null;
  private isDraining = false;
  /** The realtime hub's members now: one limit for both. */
  private otherConnections: () => number = () => 0;

  constructor(private readonly options: AppWebSocketOptions) {
    this.log = options.log;
    this.sendBufferBytes = options.sendBufferBytes;
    this.timer = options.pingIntervalMs > 0 ? setInterval(() => this.ping(), options.pingIntervalMs) : null;
    this.timer?.unref();
  }

  /** The realtime hub's members count within the same limit. */
  countWith(otherConnections: () => number): void {
    this.otherConnections = otherConnections;
  }

  /** Offered and open WebSockets (the realtime hub counts them within its limit). */
  get count(): number {
    return this.counted.size;
  }

  get openCount(): number {
    return this.open.size;
  }

  /**
   * An upgrade the hub did not take: refused, or served as a request whose application may
   * accept it (true); false when it is no WebSocket handshake (served as an ordinary request).
   */
  take(req: IncomingMessage, socket: Duplex, head: Buffer, serve: ServeRequest): boolean {
    // Not a WebSocket handshake (no valid key or version, a body): an ordinary request, as before.
    // A malformed Sec-WebSocket-Protocol or HTTP/1.0 (RFC 6455 §4.1 asks for 1.1) too.
    if (!asksForWebSocket(req) || !isValidHandshake(req) || !hasWellFormedProtocols(req) || req.httpVersion === '1.0'
      || req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) return false;
    const refusal = this.check(req);
    if (refusal !== null) {
      this.options.counters.refused(refusal.reason);
      refuseUpgrade(socket, refusal);
      return true;
    }
    if (this.server === null) {
      // The first handshake: `ws` is imported, then this is taken again (upgrade() needs the server
      // at once when the application accepts). The socket left Node's connection code before
      // this call, so no answer can take it meanwhile and offer() cannot but serve it.
      this.loadServer().then(() => {
        if (!socket.destroyed && !this.take(req, socket, head, serve)) socket.destroy();
      }, (error: unknown) => {
        const { message, stack } = error instanceof Error ? error : { message: String(error), stack: '' };
        LogEvents.frontBug(this.log, { where: 'websocket', message, stack: stack ?? '' });
        refuseUpgrade(socket, { status: 503, reason: 'unavailable' });
      });
      return true;
    }
    return this.offer(req, socket, head, serve);
  }

  /** The WebSocketServer, made once (ws-server.ts imports `ws` then). */
  private loadServer(): Promise<WebSocketServer> {
    this.serverComing ??= createWebSocketServer({
      noServer: true,
      clientTracking: false,
      // One message is one WS_MESSAGE frame to the worker.
      maxPayload: Math.min(this.options.maxMessageBytes, MAX_PAYLOAD),
      perMessageDeflate: false,
      handleProtocols: (_offered, req) => (req as UpgradingRequest)[CHOSEN_PROTOCOL] ?? false,
    }).then((server) => {
      this.server = server;
      return server;
    });
    return this.serverComing;
  }

  /** Serves a handshake to the application (false: it waits behind another answer, and is an ordinary request). */
  private offer(req: IncomingMessage, socket: Duplex, head: Buffer, serve: ServeRequest): boolean {
    const res = new ServerResponse(req);
    res.shouldKeepAlive = false;
    try {
      res.assignSocket(socket as Parameters<ServerResponse['assignSocket']>[0]);
    } catch {
      // An answer to a request pipelined before it is still being written on this connection:
      // served in turn as an ordinary request (upgrade.ts), as before.
      return false;
    }
    this.candidates.set(req, { socket, head });
    // Answered with HTTP: the connection closes after it (nothing parses what the client sends next).
    res.once('finish', () => {
      socket.end();
      setTimeout(() => socket.destroy(), CLOSE_WAIT_MS).unref();
    });
    serve(req, res);
    return true;
  }

  /** The sink for a request `take` served (null for any other): it may become a WebSocket. */
  sinkFor(req: IncomingMessage, res: ServerResponse, http: HttpResponseSink): ResponseSink | null {
    const candidate = this.candidates.get(req);
    if (candidate === undefined) return null;
    this.candidates.delete(req);
    this.upgrading.set(candidate.socket, { req, head: candidate.head });
    const socket = new AppWebSocket(http, res, candidate.socket, this);
    this.counted.add(socket);
    return socket;
  }

  upgrade(socket: Duplex, protocol: string | null, onOpen: (ws: WebSocket) => void): void {
    const upgrading = this.upgrading.get(socket);
    if (upgrading === undefined) return;
    this.upgrading.delete(socket);
    upgrading.req[CHOSEN_PROTOCOL] = protocol;
    // take() made the server before the application saw the request.
    this.server!.handleUpgrade(upgrading.req, socket, upgrading.head, onOpen);
  }

  opened(socket: AppWebSocket): void {
    this.open.add(socket);
  }

  released(socket: AppWebSocket): void {
    this.counted.delete(socket);
    this.open.delete(socket);
  }

  countIn(): void {
    this.options.counters.messageIn();
  }

  countOut(): void {
    this.options.counters.messageOut();
  }

  countSlow(): void {
    this.options.counters.slowConsumer();
  }

  private check(req: IncomingMessage): Refusal | null {
    if (this.isDraining) return { status: 503, reason: 'stopping' };
    if (this.counted.size + this.otherConnections() >= this.options.maxConnections) return { status: 503, reason: 'full' };
    const { origins } = this.options;
    if (origins !== null && !origins.has(req.headers.origin ?? '')) return { status: 403, reason: 'origin' };
    return null;
  }

  /** Keep-alive: one that did not answer the last ping is cut (its application hears 1006); the others are pinged. */
  private ping(): void {
    for (const socket of this.open) {
      const ws = socket.socketOf;
      if (ws === null) continue;
      if (!socket.isAlive) {
        ws.terminate();
        continue;
      }
      socket.isAlive = false;
      if (ws.readyState === ws.OPEN) ws.ping();
    }
  }

  /** A stop began: no more upgrades (503). */
  drain(): void {
    this.isDraining = true;
  }

  /**
   * Closes every open WebSocket with 1001 (cut if the client does not answer) and resolves once
   * they are closed; their applications hear the close and return, freeing their worker slots.
   */
  async closeAll(): Promise<void> {
    this.isDraining = true;
    if (this.timer !== null) clearInterval(this.timer);
    await Promise.all([...this.open].map((socket) => new Promise<void>((resolve) => {
      const ws = socket.socketOf;
      if (ws === null || ws.readyState === ws.CLOSED) {
        resolve();
        return;
      }
      ws.once('close', () => resolve());
      closeThenCut(ws, 1001, 'server stopping');
    })));
  }

  kill(): void {
    this.isDraining = true;
    if (this.timer !== null) clearInterval(this.timer);
    for (const socket of this.open) socket.socketOf?.terminate();
  }
}
