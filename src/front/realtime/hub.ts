/**
 * @module The realtime hub: WebSocket members of groups, publish, tokens, limits, keep-alive, stop.
 *
 * RFC 6455 is `ws`'s (noServer: the front's own listeners hand upgrades over with
 * `handleUpgrade`, so WebSockets share the listeners, their TLS and `--max-connections`). The
 * hub refuses a join before the 101 when it can (404 no such route, 403 origin or token, 503
 * full or stopping), so a page sees the refusal at once. Members never send anything web2py
 * reads: what a client sends is read (to see its pongs and closes) and dropped, each frame at
 * most `--realtime-max-message` (else closed 1009 by ws).
 *
 * Events (messages, presence notices, token changes) are applied here and handed to the peers
 * (the other fronts, Redis); events from peers are applied here and never handed on, so each
 * reaches each front once.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { LogEvents } from '../../observability/events.js';
import type { Logger } from '../../observability/log.js';
import type { RealtimeCounters } from '../../observability/metrics.js';
import type { Peers, RealtimeEvent } from './events.js';
import { Groups, type Member } from './groups.js';
import { Tokens, type TokenArm } from './tokens.js';
import { NO_TOKEN, joinNotice, leaveNotice, type Route } from './wire.js';
import { closeThenCut, isValidHandshake, refuseUpgrade, type Refusal } from '../websocket/handshake.js';

/** Armed tokens kept at most (the oldest goes first). */
const MAX_TOKENS = 100_000;
const TOKEN_SWEEP_MS = 60_000;

export interface HubOptions {
  /** null: publishing is unsigned (loopback clients only). */
  key: string | null;
  tokens: boolean;
  tokenTtlMs: number;
  presence: boolean;
  maxMessageBytes: number;
  maxConnections: number;
  sendBufferBytes: number;
  /** 0: no pings. */
  pingIntervalMs: number;
  /** null: any origin. */
  origins: ReadonlySet<string> | null;
  compression: boolean;
  /** WebSockets of the applications (front/websocket/), counted within `maxConnections` too. */
  otherConnections: () => number;
  log: Logger;
  counters: RealtimeCounters;
}

class Connection implements Member {
  isAlive = true;
  constructor(readonly ws: WebSocket, readonly group: string, readonly name: string, readonly token: string | null) {}
  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }
  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }
  send(data: Buffer): void {
    this.ws.send(data, { binary: false });
  }
  dropSlow(): void {
    closeThenCut(this.ws, 1013, 'slow consumer');
  }
}


export type { Refusal };

export class RealtimeHub {
  readonly options: HubOptions;
  private readonly server: WebSocketServer;
  private readonly groups: Groups;
  private readonly tokens: Tokens;
  private readonly connections = new Set<Connection>();
  private readonly timers: NodeJS.Timeout[] = [];
  private peers: Peers[] = [];
  private isDraining = false;

  constructor(options: HubOptions) {
    this.options = options;
    this.server = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload: options.maxMessageBytes,
      perMessageDeflate: options.compression,
    });
    this.groups = new Groups(options.sendBufferBytes, options.presence);
    this.tokens = new Tokens(options.tokenTtlMs, MAX_TOKENS);
    this.timers.push(setInterval(() => this.tokens.sweep(), TOKEN_SWEEP_MS));
    if (options.pingIntervalMs > 0) this.timers.push(setInterval(() => this.ping(), options.pingIntervalMs));
    for (const timer of this.timers) timer.unref();
  }

  /** Where events go besides this front (set once, after the peers are made with `apply`). */
  connectPeers(peers: Peers[]): void {
    this.peers = peers;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** A join (`Upgrade: websocket` on a hub path): refused before the 101, or seated. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, target: Route): void {
    const refusal = this.checkJoin(req, target);
    if (refusal !== null) {
      this.options.counters.refused(refusal.reason);
      LogEvents.realtimeRefused(this.options.log, { reason: refusal.reason, remoteAddr: req.socket.remoteAddress, status: refusal.status });
      refuseUpgrade(socket, refusal);
      return;
    }
    const join = target as Extract<Route, { kind: 'join' }>;
    const token = this.options.tokens ? join.token : null;
    if (token !== null) void this.share({ t: 'take', k: token });
    let isSeated = false;
    socket.once('close', () => {
      if (!isSeated && token !== null) this.freeToken(token);
    });
    this.server.handleUpgrade(req, socket, head, (ws) => {
      isSeated = true;
      this.seat(new Connection(ws, join.group, join.name, token));
    });
  }

  private checkJoin(req: IncomingMessage, target: Route): Refusal | null {
    if (target.kind !== 'join') return { status: 404, reason: 'not a join path' };
    if (this.isDraining) return { status: 503, reason: 'stopping' };
    if (this.connections.size + this.options.otherConnections() >= this.options.maxConnections) return { status: 503, reason: 'full' };
    if (!isValidHandshake(req)) return { status: 400, reason: 'bad handshake' };
    const { origins } = this.options;
    if (origins !== null && !origins.has(req.headers.origin ?? '')) return { status: 403, reason: 'origin' };
    if (this.options.tokens && (target.token === NO_TOKEN || !this.tokens.take(target.token))) return { status: 403, reason: 'token' };
    return null;
  }

  private seat(connection: Connection): void {
    const { ws } = connection;
    this.connections.add(connection);
    ws.on('error', () => {}); // ws closes the socket itself (1002/1009) and emits close
    ws.on('pong', () => { connection.isAlive = true; });
    ws.once('close', () => this.unseat(connection));
    const counts = this.groups.join(connection);
    this.count(counts, connection.group);
    if (this.groups.sendsPresence) void this.share({ t: 'msg', g: connection.group, m: joinNotice(connection.name) });
  }

  private unseat(connection: Connection): void {
    if (!this.connections.delete(connection)) return;
    this.count(this.groups.leave(connection), connection.group);
    if (this.groups.sendsPresence) void this.share({ t: 'msg', g: connection.group, m: leaveNotice(connection.name) });
    if (connection.token !== null) this.freeToken(connection.token);
  }

  private freeToken(token: string): void {
    this.tokens.release(token);
    void this.share({ t: 'free', k: token });
  }

  /** A publish POST's message: to this front's members now; resolves once the peers have it too. */
  publish(group: string, message: string): Promise<void> {
    this.options.counters.published();
    this.count(this.groups.broadcast(group, message), group);
    return this.share({ t: 'msg', g: group, m: message });
  }

  /** A token POST. */
  armToken(token: string): { outcome: TokenArm; shared: Promise<void> } {
    const outcome = this.tokens.arm(token);
    return { outcome, shared: outcome === 'armed' ? this.share({ t: 'arm', k: token }) : Promise.resolve() };
  }

  /** An event from a peer: applied here only. */
  apply(event: RealtimeEvent): void {
    switch (event.t) {
      case 'msg':
        this.count(this.groups.broadcast(event.g, event.m), event.g);
        return;
      case 'arm':
        this.tokens.arm(event.k);
        return;
      case 'take':
        this.tokens.forget(event.k);
        this.tokens.hold(event.k);
        return;
      case 'free':
        this.tokens.release(event.k);
        return;
    }
  }

  private share(event: RealtimeEvent): Promise<void> {
    if (this.peers.length === 0) return Promise.resolve();
    return Promise.all(this.peers.map((peer) => peer.send(event))).then(() => undefined);
  }

  private count(counts: { delivered: number; dropped: number }, group: string): void {
    if (counts.delivered > 0) this.options.counters.sent(counts.delivered);
    if (counts.dropped > 0) {
      this.options.counters.dropped(counts.dropped);
      LogEvents.realtimeSlowConsumer(this.options.log, { group, dropped: counts.dropped });
    }
  }

  /** Keep-alive: a member that did not answer the last ping is cut; the others are pinged. */
  private ping(): void {
    for (const connection of this.connections) {
      if (!connection.isAlive) {
        connection.ws.terminate();
        continue;
      }
      connection.isAlive = false;
      if (connection.isOpen) connection.ws.ping();
    }
  }

  /** Graceful stop (after the drain): no more joins; every member closed 1001, cut if it does not answer. */
  async close(): Promise<void> {
    this.isDraining = true;
    for (const timer of this.timers) clearInterval(timer);
    const closed = [...this.connections].map((connection) => new Promise<void>((resolve) => {
      if (connection.ws.readyState === WebSocket.CLOSED) resolve();
      else connection.ws.once('close', () => resolve());
      closeThenCut(connection.ws, 1001, 'server stopping');
    }));
    await Promise.all(closed);
    await Promise.all(this.peers.map((peer) => peer.close()));
  }

  /** Stops taking joins (the drain began). */
  drain(): void {
    this.isDraining = true;
  }

  /** Immediate stop. */
  kill(): void {
    this.isDraining = true;
    for (const timer of this.timers) clearInterval(timer);
    for (const connection of this.connections) connection.ws.terminate();
    for (const peer of this.peers) void peer.close();
  }
}
