/**
 * @module Incremental frame decoder: bytes in, frames out. No sockets, no timers.
 *
 * Fed any split of the byte stream (all at once, byte by byte, random chunks) it yields the same
 * frames. Payloads are views into the pushed chunks when a frame lies within one chunk (the
 * common case), so nothing is copied; a frame split across chunks is joined once, when complete
 * (never re-concatenated per chunk, so a 16 MiB payload costs one copy). Frames of the types
 * given as `streamedTypes` are not joined at all: a payload split across chunks comes out as
 * several frames of that type and id, one per chunk's part, in order, the frame's flags on the
 * last piece only (FLAG_END included), so their payloads, joined, are the frame's.
 * A payload (or piece) is handed out as a view only where it is a fair share of the memory it
 * keeps alive: one smaller than 1/KEEP_FRACTION of a buffer over LARGE_BUFFER_BYTES is copied
 * out. Why: whoever gets a payload may keep it (a response waiting for a client that does not
 * read), and a view keeps its whole buffer; the front reads the channel into 256 KiB buffers
 * (pool/channel-reads.ts), and a 100-byte answer must not hold one of them.
 * A chunk pushed as transient is read into again once `push` returns (the front reuses its
 * read buffers: pool/channel-reads.ts): nothing of it is kept, and every payload is a copy but
 * the pieces of streamed types, which stay views (whoever gets one must say when it is done with
 * it before the buffer is reused).
 * On bad bytes it reports one typed ServerError and ignores everything after it: the caller
 * closes the channel.
 */
import { ServerError } from '../errors/index.js';
import { FLAG_END, FrameType, HEADER_BYTES, MAX_PAYLOAD, frameTypeName, type Frame, type FrameTypeCode } from './frames.js';

export type FrameHandler = (frame: Frame) => void;
export type ErrorHandler = (error: ServerError) => void;

const knownTypes = new Set<number>(Object.values(FrameType));

/** Buffers larger than this are never kept alive by a payload of less than 1/KEEP_FRACTION of them. */
export const LARGE_BUFFER_BYTES = 64 * 1024;
export const KEEP_FRACTION = 8;

/** `data[start, end)`: a view, or a copy where a view would keep a large buffer alive for a small share of it. */
function payloadOf(data: Buffer, start: number, end: number): Buffer {
  const held = data.buffer.byteLength;
  const view = data.subarray(start, end);
  return held > LARGE_BUFFER_BYTES && (end - start) * KEEP_FRACTION < held ? Buffer.from(view) : view;
}
const NONE: ReadonlySet<number> = new Set();

export class FrameDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes needed before the pending data can make progress. */
  private neededBytes = HEADER_BYTES;
  private hasFailed = false;
  /** A streamed frame whose payload is still coming: its header, and the bytes it still has to deliver. */
  private streaming: { type: FrameTypeCode; flags: number; id: number; remaining: number } | null = null;
  /** The chunk being consumed is read into again after `push`: nothing of it may be kept. */
  private isTransient = false;

  constructor(
    private readonly onFrame: FrameHandler,
    private readonly onError: ErrorHandler,
    private readonly maxPayloadBytes: number = MAX_PAYLOAD,
    private readonly streamedTypes: ReadonlySet<number> = NONE,
  ) {}

  /** Bytes held waiting for the rest of a frame. */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  push(chunk: Buffer, isTransient = false): void {
    if (this.hasFailed || chunk.length === 0) return;
    if (this.pendingBytes === 0) {
      this.isTransient = isTransient;
      try {
        this.consume(chunk);
      } finally {
        this.isTransient = false;
      }
      return;
    }
    this.pendingBytes += chunk.length;
    if (this.pendingBytes < this.neededBytes) {
      this.pending.push(isTransient ? Buffer.from(chunk) : chunk);
      return;
    }
    this.pending.push(chunk); // joined (copied) now
    const joined = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    this.consume(joined);
  }

  private consume(data: Buffer): void {
    let offset = 0;
    while (!this.hasFailed) {
      if (this.streaming !== null) {
        offset = this.stream(data, offset, this.streaming);
        if (offset === data.length) return;
        continue;
      }
      const available = data.length - offset;
      if (available < HEADER_BYTES) {
        this.keep(data, offset, HEADER_BYTES);
        return;
      }
      const type = data[offset]!;
      const flags = data[offset + 1]!;
      const reserved = data.readUInt16BE(offset + 2);
      const id = data.readUInt32BE(offset + 4);
      const length = data.readUInt32BE(offset + 8);
      if (reserved !== 0) return this.fail(new ServerError('W2N_ERR_PROTO_BAD_HEADER', { reason: `reserved field is ${reserved}, must be 0` }));
      if (!knownTypes.has(type)) return this.fail(new ServerError('W2N_ERR_PROTO_UNKNOWN_TYPE', { type: `0x${type.toString(16).padStart(2, '0')}` }));
      if (length > this.maxPayloadBytes) return this.fail(new ServerError('W2N_ERR_PROTO_TOO_LARGE', { length, limit: this.maxPayloadBytes }));
      if (available < HEADER_BYTES + length && this.streamedTypes.has(type)) {
        this.streaming = { type: type as FrameTypeCode, flags, id, remaining: length };
        offset += HEADER_BYTES;
        continue;
      }
      if (available < HEADER_BYTES + length) {
        this.keep(data, offset, HEADER_BYTES + length);
        return;
      }
      const start = offset + HEADER_BYTES;
      offset = start + length;
      const payload = this.isTransient && !this.streamedTypes.has(type) ? Buffer.from(data.subarray(start, offset)) : payloadOf(data, start, offset);
      this.onFrame({ type: type as FrameTypeCode, flags, id, payload });
    }
  }

  /** The streamed frame's next piece from `data` at `offset` (none when nothing is there); returns the new offset. */
  private stream(data: Buffer, offset: number, frame: NonNullable<FrameDecoder['streaming']>): number {
    const size = Math.min(frame.remaining, data.length - offset);
    if (size === 0) return offset;
    frame.remaining -= size;
    const isLastPiece = frame.remaining === 0;
    if (isLastPiece) this.streaming = null;
    const flags = isLastPiece ? frame.flags : frame.flags & ~FLAG_END;
    this.onFrame({ type: frame.type, flags, id: frame.id, payload: payloadOf(data, offset, offset + size) });
    return offset + size;
  }

  private keep(data: Buffer, offset: number, neededBytes: number): void {
    this.neededBytes = neededBytes;
    if (offset === data.length) return;
    const rest = this.isTransient ? Buffer.from(data.subarray(offset)) : payloadOf(data, offset, data.length);
    this.pending = [rest];
    this.pendingBytes = rest.length;
  }

  private fail(error: ServerError): void {
    this.hasFailed = true;
    this.pending = [];
    this.pendingBytes = 0;
    this.onError(error);
  }
}

/** Decodes a complete byte string; for tests and tools. */
export function decodeAll(bytes: Buffer): { frames: Frame[]; error?: ServerError } {
  const frames: Frame[] = [];
  let error: ServerError | undefined;
  const decoder = new FrameDecoder((f) => frames.push({ ...f, payload: Buffer.from(f.payload) }), (e) => { error = e; });
  decoder.push(bytes);
  return error === undefined ? { frames } : { frames, error };
}

export { frameTypeName };
