/**
 * @module Payload decoders for the frames a worker sends: RESPONSE, SENDFILE, CREDIT, FILE_OPENED, ERROR, READY, WS_ACCEPT, WS_CLOSE.
 *
 * The pool parses no payload bytes itself: every layout is read here.
 *
 * Every byte from a worker is untrusted (an application can write anything on fd 3): each decoder
 * checks the payload against its layout in docs/protocol.md and returns either the typed value or
 * a protocol error (`W2N_ERR_PROTO_BAD_PAYLOAD`), never throws. The caller treats an error like
 * a bad frame header: the worker is replaced. The shared vectors in test/corpus/frames/ hold what
 * each of these decodes to (`decoded`), for this codec and the Python one alike.
 */
import { isUtf8 } from 'node:buffer';
import { ServerError } from '../errors/index.js';
import { frameTypeName } from './frames.js';

export type Decoded<T> = { ok: true; value: T } | { ok: false; error: ServerError };

/** An ERROR frame's message is cut to this many characters (it names the exception: one line). */
export const MAX_ERROR_MESSAGE_CHARS = 4 * 1024;
/** An ERROR frame's traceback keeps its last this many characters (the innermost frames). */
export const MAX_ERROR_TRACEBACK_CHARS = 1024 * 1024;

function ok<T>(value: T): Decoded<T> {
  return { ok: true, value };
}

function bad<T>(type: number, reason: string): Decoded<T> {
  return { ok: false, error: new ServerError('W2N_ERR_PROTO_BAD_PAYLOAD', { type: frameTypeName(type) ?? type, reason }) };
}

export interface ResponseHead {
  statusCode: number;
  reason: string;
  /** Flat list: name, value, name, value … as the application gave them. */
  headers: string[];
}

export interface ResponsePayload {
  /**
   * Status and headers; null when they are unreadable (no `NNN reason` status line, or a name
   * without its value). That is the application's answer being wrong, not the channel: the
   * request fails (500) and the worker carries on. The Python worker checks both, so only a bug
   * gets here.
   */
  head: ResponseHead | null;
  /** Inline body bytes after the head (a view into the payload). */
  body: Buffer;
}

/** RESPONSE: u32 head length, the head (`"200 OK" NUL name NUL value …`, latin-1), then inline body bytes. */
export function decodeResponse(type: number, payload: Buffer): Decoded<ResponsePayload> {
  if (payload.length < 4) return bad(type, `${payload.length} bytes, shorter than the 4-byte head length`);
  const headBytes = payload.readUInt32BE(0);
  if (headBytes > payload.length - 4) return bad(type, `head length ${headBytes} past the payload's ${payload.length - 4} bytes`);
  return ok({ head: decodeHead(headBytes === 0 ? [] : payload.toString('latin1', 4, 4 + headBytes).split('\0')), body: payload.subarray(4 + headBytes) });
}

/** NUL-separated latin-1 strings: `k1 NUL v1 NUL k2 …` (docs/protocol.md, "Strings"); encodeStrings' inverse. */
export function decodeStrings(payload: Buffer): string[] {
  return payload.length === 0 ? [] : payload.toString('latin1').split('\0');
}

/** `"200 OK" NUL name NUL value …`, as decodeStrings splits it (read straight from the payload, no subarray) → status code, reason and the flat header list. */
function decodeHead(headers: string[]): ResponseHead | null {
  // The status line taken off the front in place (this runs once per response).
  const statusLine = headers.shift();
  if (statusLine === undefined || headers.length % 2 !== 0) return null;
  // `NNN` or `NNN reason`: three ASCII digits, then nothing or a space and any reason.
  if (statusLine.length < 3 || !isDigit(statusLine, 0) || !isDigit(statusLine, 1) || !isDigit(statusLine, 2)) return null;
  if (statusLine.length > 3 && statusLine.charCodeAt(3) !== 0x20) return null;
  return { statusCode: Number(statusLine.slice(0, 3)), reason: statusLine.length > 3 ? statusLine.slice(4) : '', headers };
}

function isDigit(text: string, at: number): boolean {
  const code = text.charCodeAt(at);
  return code >= 0x30 && code <= 0x39;
}

export interface SendfilePayload { fd: number; offset: number; length: number }

const SENDFILE_BYTES = 20;

/** SENDFILE: u32 fd, u64 offset, u64 length (offsets past 2^53 are refused: no real file is that large). */
export function decodeSendfile(type: number, payload: Buffer): Decoded<SendfilePayload> {
  if (payload.length !== SENDFILE_BYTES) return bad(type, `${payload.length} bytes, not ${SENDFILE_BYTES}`);
  const fd = payload.readUInt32BE(0);
  const offset = payload.readBigUInt64BE(4);
  const length = payload.readBigUInt64BE(12);
  const limit = BigInt(Number.MAX_SAFE_INTEGER);
  if (offset > limit || length > limit || offset + length > limit) return bad(type, `offset ${offset} and length ${length} out of range`);
  return ok({ fd, offset: Number(offset), length: Number(length) });
}

/** CREDIT: u32 bytes. */
export function decodeCredit(type: number, payload: Buffer): Decoded<number> {
  if (payload.length !== 4) return bad(type, `${payload.length} bytes, not 4`);
  return ok(payload.readUInt32BE(0));
}

/** FILE_OPENED (the worker's answer to BODY_FILE): one byte, 1 when it opened the file, 0 when not. */
export function decodeFileOpened(type: number, payload: Buffer): Decoded<boolean> {
  if (payload.length !== 1) return bad(type, `${payload.length} bytes, not 1`);
  const answer = payload[0]!;
  if (answer > 1) return bad(type, `answer ${answer}, not 0 or 1`);
  return ok(answer === 1);
}

export interface ErrorPayload { code: string; message: string; traceback: string | undefined }

/**
 * ERROR: a UTF-8 JSON object `{code, message, traceback}`. Strings only; the message is cut to
 * MAX_ERROR_MESSAGE_CHARS and the traceback to its last MAX_ERROR_TRACEBACK_CHARS, so a worker
 * cannot flood the log through it. The code is the worker's word: the pool escapes message and
 * traceback for the log (observability/escape.ts) and then turns the code into an error through
 * the error table (`workerError` in errors/index.ts), never through a list of its own.
 */
export function decodeError(type: number, payload: Buffer): Decoded<ErrorPayload> {
  const object = parseObject(type, payload);
  if (!object.ok) return object;
  const { code, message, traceback } = object.value;
  if (typeof code !== 'string' || code.length > 64) return bad(type, 'code is not a short string');
  if (message !== undefined && typeof message !== 'string') return bad(type, 'message is not a string');
  if (traceback !== undefined && traceback !== null && typeof traceback !== 'string') return bad(type, 'traceback is not a string');
  return ok({
    code,
    message: truncate(message ?? '', MAX_ERROR_MESSAGE_CHARS),
    traceback: typeof traceback === 'string' ? traceback.slice(-MAX_ERROR_TRACEBACK_CHARS) : undefined,
  });
}

export interface ReadyPayload { protocol: number; pid: number; python: string; workerClass: string; capacity: number }

/** READY: `{protocol, pid, python, workerClass, capacity}`. */
export function decodeReady(type: number, payload: Buffer): Decoded<ReadyPayload> {
  const object = parseObject(type, payload);
  if (!object.ok) return object;
  const { protocol, pid, python, workerClass, capacity } = object.value;
  if (typeof protocol !== 'number') return bad(type, 'protocol is not a number');
  if (typeof python !== 'string' || python.length > 64) return bad(type, 'python is not a short string');
  if (typeof workerClass !== 'string' || workerClass.length > 64) return bad(type, 'workerClass is not a short string');
  if (!Number.isSafeInteger(capacity) || (capacity as number) < 1) return bad(type, 'capacity is not a positive integer');
  return ok({ protocol, pid: Number.isSafeInteger(pid) ? pid as number : 0, python, workerClass, capacity: capacity as number });
}

function parseObject(type: number, payload: Buffer): Decoded<Record<string, unknown>> {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    return bad(type, 'not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return bad(type, 'not a JSON object');
  return ok(value as Record<string, unknown>);
}

function truncate(text: string, limit: number): string {
  return text.length <= limit ? text : `${text.slice(0, limit)}… (${text.length - limit} more characters)`;
}

/** RFC 7230 token: what a Sec-WebSocket-Protocol value may be. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** WS_ACCEPT: the subprotocol the application chose (latin-1 token), or empty for none → null. */
export function decodeWsAccept(type: number, payload: Buffer): Decoded<string | null> {
  if (payload.length === 0) return ok(null);
  const protocol = payload.toString('latin1');
  if (payload.length > 255 || !TOKEN.test(protocol)) return bad(type, 'the subprotocol is not a short token');
  return ok(protocol);
}

export interface PublishPayload { group: string; message: string }

/**
 * PUBLISH from a worker (the application's `publish()`, python/web2py_on_node_worker/realtime.py):
 * u8 group length (1-255), the UTF-8 group, then the UTF-8 message.
 */
export function decodePublish(type: number, payload: Buffer): Decoded<PublishPayload> {
  if (payload.length < 1) return bad(type, 'empty, without the group length');
  const groupLength = payload[0]!;
  if (groupLength === 0) return bad(type, 'an empty group');
  if (payload.length < 1 + groupLength) return bad(type, `a group of ${groupLength} bytes in ${payload.length - 1}`);
  const group = payload.subarray(1, 1 + groupLength);
  const message = payload.subarray(1 + groupLength);
  if (!isUtf8(group) || !isUtf8(message)) return bad(type, 'the group or the message is not UTF-8');
  return ok({ group: group.toString('utf8'), message: message.toString('utf8') });
}

export interface WsClosePayload { code: number; reason: string }

/** RFC 6455 §5.5: a close frame's payload is at most 125 bytes, 2 of them the code. */
export const MAX_CLOSE_REASON_BYTES = 123;

/** Close codes an endpoint may send (RFC 6455 §7.4; 1004-1006 and 1015 are never sent). */
export function isSendableCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

/** WS_CLOSE from a worker: u16 code (one an endpoint may send), then a UTF-8 reason of at most 123 bytes. */
export function decodeWsClose(type: number, payload: Buffer): Decoded<WsClosePayload> {
  if (payload.length < 2) return bad(type, `${payload.length} bytes, shorter than the 2-byte code`);
  if (payload.length > 2 + MAX_CLOSE_REASON_BYTES) return bad(type, `a reason of ${payload.length - 2} bytes, more than ${MAX_CLOSE_REASON_BYTES}`);
  const code = payload.readUInt16BE(0);
  if (!isSendableCloseCode(code)) return bad(type, `close code ${code} may not be sent`);
  const reason = payload.subarray(2);
  if (!isUtf8(reason)) return bad(type, 'the reason is not UTF-8');
  return ok({ code, reason: reason.toString('utf8') });
}
