/**
 * @module A request goes to the pool only when its connection can take one more answer.
 *
 * Whatever the front writes to a client that does not read stays in the front's memory, and a
 * whole answer (up to the worker's 1 MiB credit window) is written at once, so one client could
 * make the front hold any number of them:
 * - HTTP/1.1: Node parses every request a client pipelines in one read and calls the handler
 *   for each at once. Their answers must leave in order, so Node keeps every answer but the one
 *   being written in memory until its turn (hundreds of MB for a client that pipelines and never
 *   reads: the README, "What one connection may hold", has the figures). A request waits until
 *   its response has the connection (Node's 'socket' event: the answer before it was written
 *   out) and the connection's buffer is under its high-water mark (else its 'drain'): each
 *   connection holds about one answer.
 * - HTTP/2: a client that never opens its flow-control window (SETTINGS_INITIAL_WINDOW_SIZE 0, no
 *   WINDOW_UPDATE) leaves every answer in its stream's buffer, and the client opens all its streams before any answer exists. Each
 *   request of a session counts, from its dispatch until its answer is finished (or its stream
 *   closed), its unsent bytes but at least RESERVED_BYTES (the answer it may still get); a
 *   request waits while the session's count is past SESSION_UNSENT_BYTES. So a session has at
 *   most 16 requests in the pool at once (the others wait here, in order) and holds about
 *   4 MiB of answers it does not read. Static files are not gated: they stream from disk.
 * A client that does not read is then no longer answered, which is what it asked for; one that
 * leaves takes its waiting requests with it (they were never dispatched).
 */
import { Http2ServerResponse, type Http2Session, type Http2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { Http2StreamResponse, type AnyResponse } from './http2-stream-response.js';

/** Answer bytes one HTTP/2 session's streams may hold unsent before its next request waits. */
export const SESSION_UNSENT_BYTES = 4 * 1024 * 1024;
/** What a dispatched request counts before (and while) its answer holds less. */
const RESERVED_BYTES = 256 * 1024;

/** Calls `go` when `res` may get its answer without the connection piling up answers. */
export function whenConnectionFree(res: AnyResponse, go: () => void): void {
  if (res instanceof Http2ServerResponse || res instanceof Http2StreamResponse) {
    sessionGate(res.stream).admit(res.stream, go);
    return;
  }
  const proceed = (socket: Socket): void => {
    if (socket.writableNeedDrain) socket.once('drain', go);
    else go();
  };
  if (res.socket !== null) proceed(res.socket as Socket);
  else res.once('socket', proceed);
}

const gates = new WeakMap<Http2Session, SessionGate>();

function sessionGate(stream: Http2Stream): SessionGate {
  const session = stream.session!;
  let gate = gates.get(session);
  if (gate === undefined) {
    gate = new SessionGate();
    gates.set(session, gate);
  }
  return gate;
}

/** One HTTP/2 session: its streams that got an answer, and the requests waiting for room. */
class SessionGate {
  private readonly answering = new Set<Http2Stream>();
  private readonly waiting: { stream: Http2Stream; go: () => void }[] = [];

  admit(stream: Http2Stream, go: () => void): void {
    if (this.waiting.length === 0 && this.unsentBytes() < SESSION_UNSENT_BYTES) {
      this.start(stream, go);
      return;
    }
    this.waiting.push({ stream, go });
  }

  private start(stream: Http2Stream, go: () => void): void {
    this.answering.add(stream);
    const done = (): void => {
      this.answering.delete(stream);
      this.release();
    };
    stream.once('finish', done);
    stream.once('close', done);
    go();
  }

  private unsentBytes(): number {
    let bytes = 0;
    for (const stream of this.answering) bytes += Math.max(stream.writableLength, RESERVED_BYTES);
    return bytes;
  }

  /** Starts waiting requests (skipping those whose stream closed) while there is room. */
  private release(): void {
    while (this.waiting.length > 0 && this.unsentBytes() < SESSION_UNSENT_BYTES) {
      const next = this.waiting.shift()!;
      if (!next.stream.closed && !next.stream.destroyed) this.start(next.stream, next.go);
    }
  }
}
