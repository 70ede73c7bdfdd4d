/**
 * @module Incremental frame decoder: bytes in, frames out. No sockets, no timers.
 *
 * Fed any split of the byte stream (all at once, byte by byte, random chunks) it yields the same
 * frames. Payloads are views into the pushed chunks when a frame lies within one chunk (the
 * common case), so nothing is copied; a frame split across chunks is joined once, when complete
 * (never re-concatenated per chunk, so a 16 MiB payload costs one copy).
 * On bad bytes it reports one typed ServerError and ignores everything after it: the caller
 * closes the channel.
 */
import { ServerError } from '../errors/index.js';
import { FrameType, HEADER_BYTES, MAX_PAYLOAD, frameTypeName, type Frame, type FrameTypeCode } from './frames.js';

export type FrameHandler = (frame: Frame) => void;
export type ErrorHandler = (error: ServerError) => void;

const knownTypes = new Set<number>(Object.values(FrameType));

export class FrameDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes needed before the pending data can make progress. */
  private neededBytes = HEADER_BYTES;
  private hasFailed = false;

  constructor(
    private readonly onFrame: FrameHandler,
    private readonly onError: ErrorHandler,
    private readonly maxPayloadBytes: number = MAX_PAYLOAD,
  ) {}

  /** Bytes held waiting for the rest of a frame. */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  push(chunk: Buffer): void {
    if (this.hasFailed || chunk.length === 0) return;
    if (this.pendingBytes === 0) {
      this.consume(chunk);
      return;
    }
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes < this.neededBytes) return;
    const joined = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    this.consume(joined);
  }

  private consume(data: Buffer): void {
    let offset = 0;
    while (!this.hasFailed) {
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
      if (available < HEADER_BYTES + length) {
        this.keep(data, offset, HEADER_BYTES + length);
        return;
      }
      const start = offset + HEADER_BYTES;
      offset = start + length;
      this.onFrame({ type: type as FrameTypeCode, flags, id, payload: data.subarray(start, offset) });
    }
  }

  private keep(data: Buffer, offset: number, neededBytes: number): void {
    this.neededBytes = neededBytes;
    if (offset === data.length) return;
    const rest = data.subarray(offset);
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
