/**
 * @module Pure functions that turn frames into bytes. No I/O.
 *
 * Bodies are not copied: `encodeHeader` gives the 12 header bytes alone, so a writer can hand the
 * header and the payload to one writev (see pool/channel.ts). Small control frames use
 * `encodeFrame`, which returns one buffer.
 */
import { FLAG_BINARY, FLAG_END, FLAG_UPGRADE, FrameType, HEADER_BYTES, MAX_PAYLOAD, type FrameTypeCode } from './frames.js';

export function encodeHeader(type: FrameTypeCode, flags: number, id: number, payloadBytes: number): Buffer {
  if (payloadBytes > MAX_PAYLOAD) throw new RangeError(`payload of ${payloadBytes} bytes exceeds ${MAX_PAYLOAD}`);
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header[0] = type;
  header[1] = flags;
  header.writeUInt16BE(0, 2);
  header.writeUInt32BE(id >>> 0, 4);
  header.writeUInt32BE(payloadBytes, 8);
  return header;
}

export function encodeFrame(type: FrameTypeCode, flags: number, id: number, payload?: Buffer): Buffer {
  const length = payload?.length ?? 0;
  if (length > MAX_PAYLOAD) throw new RangeError(`payload of ${length} bytes exceeds ${MAX_PAYLOAD}`);
  const frame = Buffer.allocUnsafe(HEADER_BYTES + length);
  frame[0] = type;
  frame[1] = flags;
  frame.writeUInt16BE(0, 2);
  frame.writeUInt32BE(id >>> 0, 4);
  frame.writeUInt32BE(length, 8);
  if (payload !== undefined) payload.copy(frame, HEADER_BYTES);
  return frame;
}

/** NUL-separated latin-1 strings: `k1 NUL v1 NUL k2 …` (docs/protocol.md, "Strings"). */
export function encodeStrings(strings: readonly string[]): Buffer {
  return Buffer.from(strings.join('\0'), 'latin1');
}

export function encodeJson(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

export function encodeCredit(id: number, bytes: number): Buffer {
  const frame = encodeHeader(FrameType.CREDIT, 0, id, 4);
  const payload = Buffer.allocUnsafe(4);
  payload.writeUInt32BE(bytes, 0);
  return Buffer.concat([frame, payload]);
}

/** FILE_OPENED: one byte, 1 when the front opened the worker's file (the worker may close it now), else 0. */
export function encodeFileOpened(id: number, isOpen: boolean): Buffer {
  return encodeFrame(FrameType.FILE_OPENED, 0, id, Buffer.from([isOpen ? 1 : 0]));
}

/**
 * BODY_FILE: the whole request body is in a file the front holds open as descriptor `fd`; the
 * worker may read it itself through `/proc/<pid>/fd/<fd>` (u32 pid, u32 fd, u64 length, u64
 * device, u64 inode: what the worker checks it opened).
 */
export function encodeBodyFile(id: number, file: { pid: number; fd: number; length: number; dev: bigint; ino: bigint }): Buffer {
  const payload = Buffer.allocUnsafe(BODY_FILE_BYTES);
  payload.writeUInt32BE(file.pid, 0);
  payload.writeUInt32BE(file.fd, 4);
  payload.writeBigUInt64BE(BigInt(file.length), 8);
  payload.writeBigUInt64BE(BigInt.asUintN(64, file.dev), 16);
  payload.writeBigUInt64BE(BigInt.asUintN(64, file.ino), 24);
  return encodeFrame(FrameType.BODY_FILE, 0, id, payload);
}

const BODY_FILE_BYTES = 32;

/** `isUpgrade`: a WebSocket handshake the front can complete (FLAG_UPGRADE; such a request has no body). */
export function encodeRequest(id: number, environ: Buffer, hasBody: boolean, isUpgrade = false): Buffer {
  return encodeFrame(FrameType.REQUEST, (hasBody ? 0 : FLAG_END) | (isUpgrade ? FLAG_UPGRADE : 0), id, environ);
}

/** The header of a WS_MESSAGE (the message's bytes follow, unjoined): FLAG_BINARY for a binary one. */
export function encodeWsMessageHeader(id: number, length: number, isBinary: boolean): Buffer {
  return encodeHeader(FrameType.WS_MESSAGE, isBinary ? FLAG_BINARY : 0, id, length);
}

/** WS_CLOSE: u16 code, then the UTF-8 reason (cut to 123 bytes, RFC 6455 §5.5). */
/** PUBLISH (a worker's; the front never sends it): for tests and tools speaking as a worker. */
export function encodePublish(group: string, message: string): Buffer {
  const groupBytes = Buffer.from(group, 'utf8');
  if (groupBytes.length < 1 || groupBytes.length > 255) throw new RangeError('a group is 1 to 255 bytes');
  return encodeFrame(FrameType.PUBLISH, 0, 0, Buffer.concat([Buffer.from([groupBytes.length]), groupBytes, Buffer.from(message, 'utf8')]));
}

export function encodeWsClose(id: number, code: number, reason: string): Buffer {
  let text = Buffer.from(reason, 'utf8');
  if (text.length > 123) text = Buffer.from(text.subarray(0, 123).toString('utf8').replace(/\uFFFD$/, ''), 'utf8');
  const payload = Buffer.allocUnsafe(2 + text.length);
  payload.writeUInt16BE(code, 0);
  text.copy(payload, 2);
  return encodeFrame(FrameType.WS_CLOSE, 0, id, payload);
}
