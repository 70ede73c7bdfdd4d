/**
 * Raw HTTP/2 frames over TLS (RFC 9113 §4): what Node's own client will not send. Its nghttp2
 * drops the HEADERS of a stream reset before they left, so a reset "just after HEADERS" needs
 * the frames written by hand; the same goes for floods. Headers are HPACK literals without
 * indexing (no dynamic table), enough for GET and HEAD requests.
 */
import { connect, type TLSSocket } from 'node:tls';
import { once } from 'node:events';

export const FrameType = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const Flag = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const CANCEL = 0x8;

export interface Frame { type: number; flags: number; streamId: number; payload: Buffer }

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** A literal header field without indexing, new name (RFC 7541 §6.2.2); strings shorter than 127 bytes. */
function literal(name: string, value: string): Buffer {
  const n = Buffer.from(name, 'latin1');
  const v = Buffer.from(value, 'latin1');
  if (n.length > 126 || v.length > 126) throw new Error('header too long for this encoder');
  return Buffer.concat([Buffer.from([0x00, n.length]), n, Buffer.from([v.length]), v]);
}

/** An HPACK block for a request, with `extra` header fields (lower-case names) after the pseudo-headers. */
export function requestBlock(method: string, path: string, authority = 'localhost', extra: readonly (readonly [string, string])[] = []): Buffer {
  return Buffer.concat([literal(':method', method), literal(':scheme', 'https'), literal(':path', path), literal(':authority', authority),
    ...extra.map(([name, value]) => literal(name, value))]);
}

export function settingsFrame(settings: Record<number, number> = {}): Buffer {
  const entries = Object.entries(settings);
  const payload = Buffer.alloc(entries.length * 6);
  entries.forEach(([id, value], i) => {
    payload.writeUInt16BE(Number(id), i * 6);
    payload.writeUInt32BE(value, i * 6 + 2);
  });
  return frame(FrameType.SETTINGS, 0, 0, payload);
}

export function rstFrame(streamId: number, code = CANCEL): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(code);
  return frame(FrameType.RST_STREAM, 0, streamId, payload);
}

/**
 * An HTTP/2 connection driven frame by frame: it acknowledges the server's SETTINGS (else the
 * server closes it) and records every frame it receives; nothing else is automatic (no
 * WINDOW_UPDATE: the server's DATA stops at the initial windows).
 */
export class RawH2 {
  readonly frames: Frame[] = [];
  private buffered = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;
  /** The next client stream id to use (odd, increasing). */
  nextStreamId = 1;
  readonly whenClosed: Promise<void>;

  private constructor(readonly socket: TLSSocket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => undefined);
    this.whenClosed = new Promise((resolve) => socket.once('close', () => {
      this.closed = true;
      this.wake();
      resolve();
    }));
  }

  /** Connects with ALPN h2, sends the preface and `settings`. */
  static async open(port: number, ca: string, settings: Record<number, number> = {}): Promise<RawH2> {
    const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost', ALPNProtocols: ['h2'] });
    await once(socket, 'secureConnect');
    const connection = new RawH2(socket);
    socket.write(Buffer.concat([PREFACE, settingsFrame(settings)]));
    return connection;
  }

  write(bytes: Buffer): void {
    if (!this.closed) this.socket.write(bytes);
  }

  /** HEADERS (END_HEADERS | END_STREAM) of a request on `streamId`. */
  headers(streamId: number, method: string, path: string, extra: readonly (readonly [string, string])[] = []): Buffer {
    return frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, streamId, requestBlock(method, path, 'localhost', extra));
  }

  /** Resolves when a received frame matches (or the connection closed: then null). */
  async waitFor(match: (f: Frame) => boolean): Promise<Frame | null> {
    for (;;) {
      const found = this.frames.find(match);
      if (found !== undefined) return found;
      if (this.closed) return null;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= 9) {
      const length = this.buffered.readUIntBE(0, 3);
      if (this.buffered.length < 9 + length) break;
      const received: Frame = {
        type: this.buffered[3]!, flags: this.buffered[4]!, streamId: this.buffered.readUInt32BE(5) & 0x7fffffff,
        payload: this.buffered.subarray(9, 9 + length),
      };
      this.buffered = this.buffered.subarray(9 + length);
      if (received.type === FrameType.SETTINGS && (received.flags & Flag.ACK) === 0) this.write(frame(FrameType.SETTINGS, Flag.ACK, 0));
      this.frames.push(received);
    }
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }
}
