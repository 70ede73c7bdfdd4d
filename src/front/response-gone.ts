/**
 * @module Whether a response can still reach its client.
 *
 * HTTP/1: `res.destroyed` (set when the connection closed or the response was destroyed).
 * HTTP/2 (Node's compatibility API): Http2ServerResponse has no `destroyed`, and its
 * `writableFinished` is true on a stream the client reset (Node ends the stream's writable side
 * when it closes it), so neither says whether the answer really went out. The stream itself
 * does: `closed` once an RST_STREAM (sent or received) or the end of the answer closed it,
 * `destroyed` once Node let go of it.
 */
import { Http2ServerResponse, type Http2Stream } from 'node:http2';
import { Http2StreamResponse, type AnyResponse } from './http2-stream-response.js';

/** The HTTP/2 stream behind a response (Node's compatibility API or our raw one); undefined for HTTP/1. */
function streamOf(res: AnyResponse): Http2Stream | undefined {
  return res instanceof Http2ServerResponse || res instanceof Http2StreamResponse ? res.stream : undefined;
}

/** True when nothing written to `res` can reach the client any more (reset, closed or cut). */
export function isResponseGone(res: AnyResponse): boolean {
  if ('destroyed' in res && res.destroyed) return true;
  const stream = streamOf(res);
  return stream !== undefined && (stream.closed || stream.destroyed);
}

/**
 * True when the answer was all handed over: ended by us (`writableEnded`) and `writableFinished`,
 * except on an HTTP/2 stream that was reset (Node reports it finished then too; a stream that
 * ended normally has rstCode 0). `writableEnded` because Node's compatibility API reads the
 * stream's own `writableFinished`, which a session's first stream closed with its session has
 * true, with rstCode 0, when nothing was answered on it (a queued request then looked finished).
 */
export function isAnswerComplete(res: AnyResponse): boolean {
  if (!res.writableEnded || !res.writableFinished) return false;
  const stream = streamOf(res);
  return stream === undefined || stream.rstCode === undefined || stream.rstCode === 0;
}
