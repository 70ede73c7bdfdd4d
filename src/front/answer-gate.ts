/**
 * @module A pipelined HTTP/1.1 request waits for its turn on the connection before it goes to the pool.
 *
 * Node parses every request a client pipelines in one read and calls the handler for each at
 * once. Their answers must leave in order, so Node keeps every answer but the one being written
 * in memory (the response's `outputData`) until its turn: a client that pipelines hundreds of
 * requests and reads nothing made the front hold all their answers (2,000 whole answers of
 * 256 KiB: +338 MB). A request is handed to the pool only once its response has the connection
 * (Node's 'socket' event: the answer before it was written out) and the connection's buffer is
 * under its high-water mark (else at its 'drain'), so each HTTP/1.1 connection holds about one
 * answer; the worker's credit window bounds a streamed one. A client that does not read is then
 * no longer answered, which is what it asked for. HTTP/2 streams have their own bound
 * (http2-sessions.ts).
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** Calls `go` when `res` may get its answer without the connection piling up answers. */
export function whenConnectionFree(res: ServerResponse, go: () => void): void {
  if (res.req.httpVersionMajor !== 1) {
    go();
    return;
  }
  const proceed = (socket: Socket): void => {
    if (socket.writableNeedDrain) socket.once('drain', go);
    else go();
  };
  if (res.socket !== null) proceed(res.socket as Socket);
  else res.once('socket', proceed);
}
