/**
 * @module X-Request-ID: each request's id, kept with its response for the log lines and the answer.
 *
 * A request from a trusted proxy (the `--trusted-proxies` rule that already decides about
 * X-Forwarded-*, environ.ts) keeps the X-Request-ID that proxy sent, if it is well formed: one
 * header, 1 to 200 printable ASCII characters other than `"`, `\` and `,` (a comma is HTTP's list
 * separator: "a,b" is two ids joined by a proxy chain, not one). Any other request gets a
 * new one (a random UUID: unique across fronts and restarts, and about as cheap as a counter,
 * since Node draws the random bytes in batches). A client's own X-Request-ID never reaches the
 * application: the environ's HTTP_X_REQUEST_ID is always this id.
 *
 * The id lives on the ServerResponse (a symbol property), so whoever answers or logs for a
 * request (the response sink, the static files, the refusals) finds it without another
 * parameter in every signature, as does the count of body bytes the access line reports.
 */
import { randomUUID } from 'node:crypto';
import type { AnyResponse } from './http2-stream-response.js';

export const REQUEST_ID_HEADER = 'X-Request-ID';

/**
 * 1-200 chars of printable ASCII, without `"` and `\` (they would need escaping in every log
 * format) and `,` (a list of ids, which log parsers split on).
 */
const WELL_FORMED = /^[\x21\x23-\x2b\x2d-\x5b\x5d-\x7e]{1,200}$/;

export function isWellFormedRequestId(value: string): boolean {
  return WELL_FORMED.test(value);
}

export function newRequestId(): string {
  return randomUUID();
}

/** What the front keeps on a response for its log lines. */
interface ResponseNotes {
  requestId: string;
  /** Body bytes handed to the connection, where the front counts them (countBody). */
  bodyBytes: number | null;
}

const NOTES = Symbol('w2nResponseNotes');
type NotedResponse = (AnyResponse) & { [NOTES]?: ResponseNotes };

/** Gives the response its request's id (once, at the start). */
export function noteRequestId(res: AnyResponse, requestId: string): void {
  (res as NotedResponse)[NOTES] = { requestId, bodyBytes: null };
}

/** The id of the request `res` answers; '' for a response the handler never noted (none in practice). */
export function requestIdOf(res: AnyResponse): string {
  return (res as NotedResponse)[NOTES]?.requestId ?? '';
}

/** `['X-Request-ID', id]` for a header list built by hand, or [] when there is none. */
export function requestIdHeader(res: AnyResponse): string[] {
  const id = requestIdOf(res);
  return id === '' ? [] : [REQUEST_ID_HEADER, id];
}

/** `bytes` more of the body went to the connection. */
export function countBody(res: AnyResponse, bytes: number): void {
  const notes = (res as NotedResponse)[NOTES];
  if (notes !== undefined) notes.bodyBytes = (notes.bodyBytes ?? 0) + bytes;
}

/**
 * The body bytes for the access line: as counted; else, for an answer that ended whole, its
 * Content-Length when it was set with setHeader (the static files' answers); 0 for HEAD, 204 and
 * 304, whose bodies Node never sends.
 */
export function bodyBytesOf(res: AnyResponse, isComplete: boolean): number {
  if (res.req.method === 'HEAD' || res.statusCode === 204 || res.statusCode === 304) return 0;
  const counted = (res as NotedResponse)[NOTES]?.bodyBytes ?? null;
  if (counted !== null) return counted;
  if (!isComplete) return 0;
  const declared = Number(res.getHeader('content-length') ?? 0);
  return Number.isSafeInteger(declared) && declared >= 0 ? declared : 0;
}
