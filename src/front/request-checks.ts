/**
 * @module What the front refuses in a parsed request head before anything else looks at it.
 *
 * Node's llhttp parser (strict mode) already refuses most bad framing: Content-Length with
 * Transfer-Encoding, duplicate Content-Length, bad chunk sizes, obs-fold, bare CR or LF, a
 * Transfer-Encoding whose last coding is not `chunked`. What it lets through, and this module
 * refuses, is decided on the parsed head:
 * - a request line longer than `--max-request-line` (llhttp has no limit of its own on the URL;
 *   it only counts it towards `--max-header-size`): 414;
 * - more header fields than `--max-headers` (Node's `maxHeadersCount` silently drops the extra
 *   ones instead of refusing): 431;
 * - HTTP/1.1 without Host, or any request with two Host fields (RFC 9112 §3.2): 400;
 * - Transfer-Encoding in an HTTP/1.0 request, whose framing RFC 9112 §6.1 calls faulty: 400;
 * - a Transfer-Encoding whose last coding is not `chunked`: the body's length is unknown, 400
 *   (RFC 9112 §6.3; llhttp would refuse it only once the body starts, after the application got
 *   the request);
 * - a coding before `chunked` (`gzip, chunked`): the front would hand the application a body
 *   still gzip-coded, so 501 as RFC 9112 §6.1 asks.
 *
 * Pure: no I/O, so each rule is tested with plain values.
 */
import type { ErrorCode, ErrorDetails } from '../errors/index.js';

export interface HeadLimits {
  /** Longest request line in bytes (`GET /x HTTP/1.1`, without CRLF). */
  readonly maxRequestLine: number;
  /** Most header fields. */
  readonly maxHeaders: number;
}

/** What it reads of a request; Node's IncomingMessage is one. */
export interface RequestHead {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly httpVersionMajor: number;
  readonly httpVersionMinor: number;
  /** Flat list as Node gives it: name, value, name, value … */
  readonly rawHeaders: readonly string[];
}

export interface HeadRefusal {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;
}

/**
 * An HTTP/1.x connection serves HTTP/1.0 and HTTP/1.1 requests only: llhttp also accepts
 * `HTTP/0.9` and `HTTP/2.0` request lines, which are refused with 505 (RFC 9110 §15.6.6).
 * `isHttp2Stream`: the request came on a real HTTP/2 stream (ALPN h2), where 2.0 is right.
 */
export function checkHttpVersion(major: number, minor: number, isHttp2Stream: boolean): HeadRefusal | null {
  if (isHttp2Stream ? major === 2 : major === 1 && (minor === 0 || minor === 1)) return null;
  return { code: 'W2N_ERR_CLIENT_HTTP_VERSION', details: { version: `${major}.${minor}` } };
}

/** `HTTP/1.1`: the version part of a request line is always 8 bytes. */
const VERSION_LENGTH = 8;

/** null when the head is acceptable, else what to refuse it with. */
export function checkRequestHead(head: RequestHead, limits: HeadLimits): HeadRefusal | null {
  // Node gives the target as latin-1 text: one character per byte received.
  const lineLength = (head.method ?? '').length + 1 + (head.url ?? '').length + 1 + VERSION_LENGTH;
  if (lineLength > limits.maxRequestLine) return { code: 'W2N_ERR_CLIENT_URI_TOO_LONG', details: { limit: limits.maxRequestLine } };
  const raw = head.rawHeaders;
  // HTTP/2 heads carry 4 pseudo-headers (`:method`, `:path`, …) in rawHeaders: not header fields.
  const count = (raw.length >> 1) - (head.httpVersionMajor === 2 ? countPseudoHeaders(raw) : 0);
  if (count > limits.maxHeaders) return { code: 'W2N_ERR_CLIENT_TOO_MANY_HEADERS', details: { count, limit: limits.maxHeaders } };
  let hosts = 0;
  let transferEncoding: string | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    // Length first: most names are neither, and this skips lower-casing them.
    if (name.length === 4 && name.toLowerCase() === 'host') hosts += 1;
    else if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') {
      transferEncoding = transferEncoding === null ? raw[i + 1]! : `${transferEncoding}, ${raw[i + 1]!}`;
    }
  }
  const isHttp11 = head.httpVersionMajor === 1 && head.httpVersionMinor >= 1;
  if (hosts > 1) return badRequest('more than one Host header');
  if (hosts === 0 && isHttp11) return badRequest('HTTP/1.1 request without a Host header');
  if (transferEncoding !== null) {
    if (!isHttp11) return badRequest('Transfer-Encoding in an HTTP/1.0 request');
    const codings = transferEncoding.toLowerCase().split(',').map((coding) => coding.trim());
    if (codings[codings.length - 1] !== 'chunked') return badRequest('Transfer-Encoding does not end in chunked');
    if (codings.length > 1) return { code: 'W2N_ERR_CLIENT_TRANSFER_CODING', details: { coding: transferEncoding } };
  }
  return null;
}

function countPseudoHeaders(raw: readonly string[]): number {
  let count = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.startsWith(':')) count += 1;
  return count;
}

function badRequest(reason: string): HeadRefusal {
  return { code: 'W2N_ERR_CLIENT_BAD_REQUEST', details: { reason } };
}

const METHOD_AND_TARGET = /^[A-Z]+ (?:\/|\*|[a-zA-Z][a-zA-Z0-9+.-]*:\/\/)/;
const SPACE = 0x20;
const LF = 0x0a;

/**
 * A head over `--max-header-size` (llhttp's HPE_HEADER_OVERFLOW, counted over the request line
 * and the headers together): was it the request line (414) or the header fields (431)?
 *
 * Node reports only the chunk being parsed (`rawPacket`) and where in it the limit was crossed
 * (`bytesParsed`, at the end of the URL, header name or value that crossed it). The URL is the
 * only part of a head whose end is a space (a header value ends at CR, a name at `:`), so a space
 * there means the request line. Otherwise, when the line being parsed starts inside this chunk
 * (after its last LF, or at its start for the first bytes of a request), its start says which it
 * is: `GET /…` is a request line, `Name: …` is not. Anything unclear is called headers (431):
 * either way the request is refused and the connection closed; only the status differs.
 */
export function isRequestLineOverflow(rawPacket: Buffer | undefined, bytesParsed: number | undefined): boolean {
  if (rawPacket === undefined || bytesParsed === undefined) return false;
  const end = Math.min(bytesParsed, rawPacket.length);
  if (end < rawPacket.length && rawPacket[end] === SPACE) return true;
  const lastLf = end > 0 ? rawPacket.lastIndexOf(LF, end - 1) : -1;
  const lineStart = lastLf < 0 ? 0 : lastLf + 1;
  const start = rawPacket.toString('latin1', lineStart, Math.min(end, lineStart + 64));
  return METHOD_AND_TARGET.test(start);
}
