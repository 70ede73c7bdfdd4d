/**
 * @module Frame types, header layout and limits of the front ↔ worker protocol.
 *
 * This file mirrors docs/protocol.md; python/web2py_on_node_worker/protocol.py holds the same
 * constants, and test/unit/protocol-constants.test.ts checks that all three agree.
 */

export const PROTOCOL_VERSION = 1;
export const HEADER_BYTES = 12;
/** Largest payload a decoder accepts; bounds its buffer. */
export const MAX_PAYLOAD = 16 * 1024 * 1024;
/** Largest body chunk either side puts in one frame. */
export const MAX_CHUNK = 256 * 1024;

/** Flag bit 0: the last frame of this direction of this request. */
export const FLAG_END = 0x01;
/** Flag bit 1, on CANCEL: the request ran past --timeout; interrupt its thread or greenlet. */
export const FLAG_TIMEOUT = 0x02;
/** Flag bit 2, on REQUEST: a valid WebSocket handshake the front can complete (the app gets `wsgi.websocket`). */
export const FLAG_UPGRADE = 0x04;
/** Flag bit 2, on WS_MESSAGE: a binary message (else text, UTF-8). */
export const FLAG_BINARY = 0x04;

export const FrameType = {
  HANDSHAKE: 0x01,
  READY: 0x02,
  SHUTDOWN: 0x03,
  PING: 0x04,
  PONG: 0x05,
  REQUEST: 0x10,
  BODY: 0x11,
  CANCEL: 0x12,
  CREDIT: 0x13,
  BODY_FILE: 0x14,
  RESPONSE: 0x20,
  RESPONSE_BODY: 0x21,
  SENDFILE: 0x22,
  FILE_OPENED: 0x23,
  ERROR: 0x24,
  WS_ACCEPT: 0x30,
  WS_MESSAGE: 0x31,
  WS_CLOSE: 0x32,
  PUBLISH: 0x40,
} as const;

/**
 * The keys of HANDSHAKE's JSON object (docs/protocol.md): the front sends every one and no other
 * (pool/worker.ts checks its payload's type against this list), and the worker refuses to start
 * on a key it does not know or misses. protocol.py's HANDSHAKE_KEYS is the same list
 * (test/unit/protocol-constants.test.ts).
 */
export const HANDSHAKE_KEYS = [
  'protocol', 'workerId', 'app', 'threads', 'workerClass', 'requestWindow', 'responseWindow', 'profilerDir', 'realtimeMaxMessage',
] as const;
export type HandshakeKey = (typeof HANDSHAKE_KEYS)[number];

export type FrameTypeName = keyof typeof FrameType;
export type FrameTypeCode = (typeof FrameType)[FrameTypeName];

const namesByCode = new Map<number, FrameTypeName>(
  Object.entries(FrameType).map(([name, code]) => [code, name as FrameTypeName]),
);

export function frameTypeName(code: number): FrameTypeName | undefined {
  return namesByCode.get(code);
}

/** One decoded frame. `payload` may be a view into the decoder's buffer: copy it to keep it. */
export interface Frame {
  type: FrameTypeCode;
  flags: number;
  id: number;
  payload: Buffer;
}
