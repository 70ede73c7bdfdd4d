/**
 * @module A channel's WebSocket frames: WS_ACCEPT, WS_MESSAGE and WS_CLOSE, and their flow control.
 *
 * Kept apart from channel.ts, which owns the request table and the socket: this module only
 * reads and writes the frames of exchanges whose REQUEST went out with FLAG_UPGRADE
 * (docs/protocol.md, "WebSockets"). The client's messages go to the worker within the request
 * window (the client is paused while it is shut, so a flooding client is held back by TCP); the
 * application's messages come within the response window, credited once the front has written
 * them to the client. The front's memory per WebSocket is bounded by the two windows.
 */
import { isUtf8 } from 'node:buffer';
import type { ServerError } from '../errors/index.js';
import { encodeWsClose, encodeWsMessageHeader } from '../protocol/encode.js';
import { FLAG_BINARY, FLAG_END, FrameType, type Frame } from '../protocol/frames.js';
import { decodeWsAccept, decodeWsClose } from '../protocol/payloads.js';
import type { ChannelWindows } from './channel.js';
import type { Exchange, WebSocketLink } from './exchange.js';

/**
 * `no`: an ordinary request. `offered`: the REQUEST had FLAG_UPGRADE, the application has not
 * accepted. `open`: accepted (101 sent). `closed`: the client's side is closed and the worker
 * was told (WS_CLOSE); the exchange lasts until the application returns (its last word).
 */
export type WebSocketState = 'no' | 'offered' | 'open' | 'closed';

/** The channel's view of one running exchange, as far as WebSockets go. */
export interface WebSocketEntry {
  exchange: Exchange;
  websocket: WebSocketState;
  hasHead: boolean;
  bodyBytesInFlight: number;
  isBodyPaused: boolean;
  responseBytesUncredited: number;
  startedAtMs: number;
}

/** What the channel lends this module. */
export interface ChannelHooks<E> {
  write(bytes: Buffer): void;
  isRunning(entry: E): boolean;
  acknowledge(entry: E, bytes: number): void;
  /** The exchange is over (the worker's last word). */
  end(entry: E): void;
  outOfOrder(frame: Frame, state: string): void;
  onDecodeError(error: ServerError): void;
  now(): number;
}

export class WebSocketFrames<E extends WebSocketEntry> {
  constructor(private readonly hooks: ChannelHooks<E>, private readonly windows: ChannelWindows) {}

  /** Handles `frame` when it is a WebSocket frame, or a frame an accepted WebSocket may not have (true); else false. */
  isWebSocketFrame(frame: Frame, entry: E): boolean {
    const isUpgraded = entry.websocket === 'open' || entry.websocket === 'closed';
    switch (frame.type) {
      case FrameType.WS_ACCEPT:
        if (entry.websocket !== 'offered' || entry.hasHead) this.hooks.outOfOrder(frame, entry.websocket === 'no' ? 'not a WebSocket' : 'answered or accepted');
        else this.accept(frame, entry);
        return true;
      case FrameType.WS_MESSAGE:
        if (!isUpgraded) this.hooks.outOfOrder(frame, 'not accepted');
        else this.fromApp(frame, entry);
        return true;
      case FrameType.WS_CLOSE:
        if (!isUpgraded) this.hooks.outOfOrder(frame, 'not accepted');
        else this.closeFromApp(frame, entry);
        return true;
      case FrameType.RESPONSE:
      case FrameType.RESPONSE_BODY:
      case FrameType.SENDFILE:
        if (isUpgraded) this.hooks.outOfOrder(frame, 'WebSocket accepted');
        return isUpgraded;
      default:
        return false;
    }
  }

  /** The front cancels an accepted WebSocket's exchange (its client is gone): the worker hears a close (true). */
  cancel(entry: E): boolean {
    if (entry.websocket === 'open') this.closed(entry, 1006, '');
    return entry.websocket === 'closed';
  }

  /** Closes every open WebSocket of these exchanges (the worker drains). */
  closeAll(entries: E[], code: number, reason: string): void {
    for (const entry of entries) if (entry.websocket === 'open') entry.exchange.sink.websocket?.close(code, reason, false);
  }

  private accept(frame: Frame, entry: E): void {
    const decoded = decodeWsAccept(frame.type, frame.payload);
    if (!decoded.ok) return this.hooks.onDecodeError(decoded.error);
    entry.websocket = 'open';
    entry.hasHead = true;
    const link: WebSocketLink = {
      message: (data, isBinary) => this.toApp(entry, data, isBinary),
      closed: (code, reason) => this.closed(entry, code, reason),
      acknowledge: (bytes) => this.hooks.acknowledge(entry, bytes),
    };
    entry.exchange.sink.websocket!.accept(decoded.value, link);
  }

  /** A message from the application: within its window, and text must be UTF-8 (the client would close 1007). */
  private fromApp(frame: Frame, entry: E): void {
    if (entry.responseBytesUncredited >= this.windows.responseWindowBytes) return this.hooks.outOfOrder(frame, 'past the response window');
    const isBinary = (frame.flags & FLAG_BINARY) !== 0;
    if (!isBinary && !isUtf8(frame.payload)) return this.hooks.outOfOrder(frame, 'text message not UTF-8');
    entry.responseBytesUncredited += frame.payload.length;
    entry.exchange.sink.websocket!.message(frame.payload, isBinary);
  }

  private closeFromApp(frame: Frame, entry: E): void {
    const decoded = decodeWsClose(frame.type, frame.payload);
    if (!decoded.ok) return this.hooks.onDecodeError(decoded.error);
    const isLast = (frame.flags & FLAG_END) !== 0;
    if (isLast) this.hooks.end(entry);
    entry.exchange.sink.websocket!.close(decoded.value.code, decoded.value.reason, isLast);
  }

  /** A client's message to the worker; the client is paused once the worker's window is full. */
  private toApp(entry: E, data: Buffer, isBinary: boolean): void {
    if (entry.websocket !== 'open' || !this.hooks.isRunning(entry)) return;
    this.hooks.write(encodeWsMessageHeader(entry.exchange.id, data.length, isBinary));
    this.hooks.write(data);
    entry.bodyBytesInFlight += data.length;
    if (entry.bodyBytesInFlight >= this.windows.requestWindowBytes && !entry.isBodyPaused) {
      entry.isBodyPaused = true;
      entry.exchange.sink.websocket?.pause();
    }
  }

  /** The client's side closed: the worker is told once, and the --timeout clock starts for the application to return. */
  private closed(entry: E, code: number, reason: string): void {
    if (entry.websocket !== 'open' || !this.hooks.isRunning(entry)) return;
    entry.websocket = 'closed';
    entry.startedAtMs = this.hooks.now();
    this.hooks.write(encodeWsClose(entry.exchange.id, code, reason));
  }
}
