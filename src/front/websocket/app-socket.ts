/**
 * @module One application WebSocket: the response sink of an upgrade request, and then the socket.
 *
 * Until the application accepts, this is the request's HttpResponseSink (an application that
 * answers with HTTP is answered as any request, and the connection closed). On WS_ACCEPT the
 * socket leaves the HTTP response (`detachSocket`) and `ws` completes the handshake on it
 * (`handleUpgrade`: no framing here); from then on messages go both ways through the pool's
 * WebSocketLink. The HTTP response is closed (its `close` event: the access line with 101, the
 * in-flight count) when the WebSocket is, after the worker heard of it.
 */
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { Logger } from '../../observability/log.js';
import type { AppFailure, ResponseHead, ResponseSink, WebSocketLink, WebSocketSink } from '../../pool/exchange.js';
import { logFailure, type HttpResponseSink } from '../response-sink.js';
import { closeThenCut } from './handshake.js';

/** What the registry (app-sockets.ts) lends each socket. */
export interface AppSocketHost {
  readonly log: Logger;
  readonly sendBufferBytes: number;
  /** Completes the handshake (ws's handleUpgrade) with this subprotocol. */
  upgrade(socket: Duplex, protocol: string | null, onOpen: (ws: WebSocket) => void): void;
  opened(socket: AppWebSocket): void;
  /** It no longer counts (declined, or closed). */
  released(socket: AppWebSocket): void;
  countIn(): void;
  countOut(): void;
  countSlow(): void;
}

type State = 'offered' | 'declined' | 'open' | 'done';

/** ws's error codes for what a client sent, and the close codes it sends for them. */
const REFUSAL_CODES: Readonly<Record<string, number>> = { WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: 1009, WS_ERR_INVALID_UTF8: 1007 };

export class AppWebSocket implements ResponseSink {
  readonly websocket: WebSocketSink;
  /** Answered a keep-alive ping since the last one (app-sockets.ts pings). */
  isAlive = true;
  private state: State = 'offered';
  private ws: WebSocket | null = null;
  private link: WebSocketLink | null = null;
  private isResponseClosed = false;
  /** The code the front closed it with for what the client did (1009 too big, 1007 not UTF-8, 1002, 1013 too slow): what the app hears. */
  private refusedWith: number | null = null;

  constructor(
    private readonly http: HttpResponseSink,
    private readonly res: ServerResponse,
    private readonly socket: Duplex,
    private readonly host: AppSocketHost,
  ) {
    this.websocket = {
      accept: (protocol, link) => this.accept(protocol, link),
      message: (data, isBinary) => this.send(data, isBinary),
      close: (code, reason) => this.close(code, reason),
      pause: () => this.ws?.pause(),
      resume: () => this.ws?.resume(),
    };
    // A client gone before the application answered or accepted: it no longer counts.
    res.once('close', () => this.decline());
  }

  get socketOf(): WebSocket | null {
    return this.ws;
  }

  head(head: ResponseHead, body: Buffer, isComplete: boolean): void {
    this.decline();
    this.http.head(head, body, isComplete);
  }

  body(chunk: Buffer, isLast: boolean, written?: () => void): void {
    this.http.body(chunk, isLast, written);
  }

  sendFile(path: string, offset: number, length: number, onOpened: (isOpen: boolean) => void): void {
    this.http.sendFile(path, offset, length, onOpened);
  }

  fail(failure: AppFailure): void {
    if (this.state === 'offered' || this.state === 'declined') {
      this.decline();
      this.http.fail(failure);
      return;
    }
    // After the 101 a failure (the app raised, its worker died) can only close the socket: 1011.
    logFailure(this.host.log, this.http.exchange, failure, true, this.http.requestId);
    this.close(1011, 'internal error');
  }

  /** Closes it from the server's side (a stop: 1001). */
  close(code: number, reason: string): void {
    if (this.ws !== null && this.ws.readyState === this.ws.OPEN) closeThenCut(this.ws, code, reason);
  }

  private decline(): void {
    if (this.state !== 'offered') return;
    this.state = 'declined';
    this.host.released(this);
  }

  private accept(protocol: string | null, link: WebSocketLink): void {
    this.link = link;
    if (this.state !== 'offered' || this.socket.destroyed || !this.socket.writable) {
      link.closed(1006, '');
      return;
    }
    this.state = 'open';
    this.res.statusCode = 101;
    // The socket is the WebSocket's now: the response no longer hears of it, and closes with it.
    this.socket.once('close', () => {
      if (this.ws === null) this.ended(1006, '');
    });
    try {
      this.res.detachSocket(this.socket as Parameters<ServerResponse['detachSocket']>[0]);
      this.host.upgrade(this.socket, protocol, (ws) => this.open(ws));
    } catch {
      // A bug here costs this connection only (its application hears 1006), never the front.
      this.socket.destroy();
    }
  }

  private open(ws: WebSocket): void {
    this.ws = ws;
    this.host.opened(this);
    // ws closes the socket itself on what the client sent wrong, and emits close.
    ws.on('error', (error: Error & { code?: string }) => { this.refusedWith = REFUSAL_CODES[error.code ?? ''] ?? 1002; });
    ws.on('pong', () => { this.isAlive = true; });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.host.countIn();
      this.link?.message(data, isBinary);
    });
    ws.once('close', (code: number, reason: Buffer) => this.ended(this.refusedWith ?? code, reason.toString('utf8')));
  }

  /** A message from the application; a client that reads slower than it is sent to is closed (1013). */
  private send(data: Buffer, isBinary: boolean): void {
    const ws = this.ws;
    if (ws === null || ws.readyState !== ws.OPEN) return;
    if (ws.bufferedAmount > this.host.sendBufferBytes) {
      this.host.countSlow();
      this.refusedWith = 1013; // what its application hears, though the client may never answer the close
      closeThenCut(ws, 1013, 'slow consumer');
      return;
    }
    this.host.countOut();
    ws.send(data, { binary: isBinary }, (error) => {
      if (error === undefined || error === null) this.link?.acknowledge(data.length);
    });
  }

  /** The socket is closed: the worker hears it, then the response closes (access line, in-flight count). */
  private ended(code: number, reason: string): void {
    if (this.state === 'done') return;
    this.state = 'done';
    this.link?.closed(code, reason);
    this.host.released(this);
    if (!this.isResponseClosed) {
      this.isResponseClosed = true;
      this.res.emit('close');
    }
  }
}
