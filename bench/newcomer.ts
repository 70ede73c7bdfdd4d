/**
 * @module bench/newcomer
 * The newcomer probe: while a load runs, every 0.5 s open a FRESH TCP connection, send one
 * GET and time the answer. wrk opens its connections once and reports only answered requests,
 * so connections a server never accepts or never serves (keep-alive holders starving the
 * rest, a full backlog) are invisible to it; a newcomer's wait shows them.
 *
 * Probes are started on a fixed 0.5 s tick and may overlap (a stalled one does not delay the
 * next). They start 1 s into the load (ramp-up) and the last one is started early enough to
 * finish, answered or timed out, before the load ends.
 */
import { getOnce } from './proc.js';

/** One probe: when it started (ms since the load began), how long the answer took (null: none). */
export interface ProbeSample {
  atMs: number;
  ms: number | null;
  status?: number;
}

export interface NewcomerFigures {
  /** Every probe, in start order. */
  samples: ProbeSample[];
  /** Answered probes' times, ms, in start order. */
  ms: number[];
  /** Probes with no answer within the timeout (or a connection error). */
  unanswered: number;
  /** Answers with a status other than 200 (answered, but not served). */
  non200: number;
  timeoutMs: number;
  intervalMs: number;
  medianMs: number | null;
  maxMs: number | null;
}

export interface ProbeOptions {
  intervalMs?: number;
  timeoutMs?: number;
  startAfterMs?: number;
  /** Probe over HTTPS (the TLS scenarios): the handshake is part of what a newcomer waits for. */
  tls?: boolean;
}

export class NewcomerProbe {
  private readonly samples: ProbeSample[] = [];
  private readonly t0 = performance.now();
  private readonly pending = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private starter: NodeJS.Timeout | undefined;
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private readonly tls: boolean;

  /** `loadMs`: how long the load runs from now. */
  constructor(
    private readonly port: number,
    private readonly path: string,
    loadMs: number,
    opts: ProbeOptions = {},
  ) {
    this.intervalMs = opts.intervalMs ?? 500;
    this.timeoutMs = opts.timeoutMs ?? 2000;
    this.tls = opts.tls ?? false;
    const startAfter = opts.startAfterMs ?? 1000;
    const lastStart = Date.now() + loadMs - this.timeoutMs;
    this.starter = setTimeout(() => {
      this.probe();
      this.timer = setInterval(() => {
        if (Date.now() > lastStart) return this.halt();
        this.probe();
      }, this.intervalMs);
    }, startAfter);
  }

  private halt(): void {
    clearTimeout(this.starter);
    clearInterval(this.timer);
  }

  private probe(): void {
    const start = performance.now();
    const sample: ProbeSample = { atMs: Math.round(start - this.t0), ms: null };
    this.samples.push(sample);
    const p = getOnce(this.port, this.path, this.timeoutMs, this.tls).then(
      (status) => {
        sample.ms = Math.round((performance.now() - start) * 100) / 100;
        sample.status = status;
      },
      () => undefined, // unanswered: ms stays null
    );
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  /** Stop probing, wait for probes in flight, return the figures. */
  async finish(): Promise<NewcomerFigures> {
    this.halt();
    await Promise.all([...this.pending]);
    const ms = this.samples.flatMap((x) => (x.ms === null ? [] : [x.ms]));
    const sorted = [...ms].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    const median =
      sorted.length === 0 ? null : sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
    return {
      samples: this.samples,
      ms,
      unanswered: this.samples.length - ms.length,
      non200: this.samples.filter((x) => x.status !== undefined && x.status !== 200).length,
      timeoutMs: this.timeoutMs,
      intervalMs: this.intervalMs,
      medianMs: median,
      maxMs: sorted.length ? sorted[sorted.length - 1]! : null,
    };
  }
}
