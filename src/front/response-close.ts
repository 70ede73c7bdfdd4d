/**
 * @module What every answer does when its response closes (finished, or cut short): the metrics
 * (count by status class and the status page's latency), the in-flight count, the cancel of an
 * exchange its answer did not complete, the access line; behind the front's guard.
 *
 * One place for the three ways an answer leaves: Node's compatibility API (handler.ts), the
 * application requests answered on a raw HTTP/2 stream (handler.ts `http2AppTaker`) and the
 * cached static files answered on a raw HTTP/2 stream (http2-static.ts).
 */
import type { Metrics } from '../observability/metrics.js';
import type { FrontGuard } from './guard.js';
import { isAnswerComplete } from './response-gone.js';
import type { SinkResponse } from './http2-stream-response.js';

export interface ResponseCloseWork {
  readonly metrics: Metrics;
  /** The in-flight count goes down. */
  readonly onResponseClosed: () => void;
  readonly guard: FrontGuard;
}

/** What the close cancels when the answer is incomplete: the request's exchange with the pool. */
export interface Cancellable {
  cancel(): void;
}

/**
 * The close of one answer. `where` names it for the guard (a metric label); `startedAt` is when
 * the request reached the front (performance.now()); `exchange` is cancelled when `res` did not
 * complete its answer (null: nothing to cancel, `res` is not read); `writeLine` writes the access
 * line (null: no access log).
 */
export function closeResponse(
  work: ResponseCloseWork, where: string, status: number, startedAt: number,
  exchange: Cancellable | null, res: SinkResponse | null, writeLine: (() => void) | null,
): void {
  try {
    work.metrics.responseSent(status, performance.now() - startedAt);
    work.onResponseClosed();
    // Not res.writableFinished alone: HTTP/2 reports it true on a stream the client reset.
    if (exchange !== null && res !== null && !isAnswerComplete(res)) exchange.cancel();
    if (writeLine !== null) writeLine();
  } catch (error: unknown) {
    work.guard.caught(where, error, ignore);
  }
}

function ignore(): void {}
