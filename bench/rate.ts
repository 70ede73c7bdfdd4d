/**
 * @module bench/rate
 * Open-loop load for the overload scenario: requests go out at a fixed rate whatever the
 * server answers, over keep-alive connections opened as needed. A closed-loop client (wrk)
 * would turn every fast 503 into an instant retry and measure its own loop; here the offered
 * rate stays put, as real clients arriving do. Counts admitted (2xx) and rejected (503)
 * answers separately, with their latencies, and whether the 503s carry Retry-After.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

export interface RateFigures {
  offeredRps: number;
  durationS: number;
  sent: number;
  /** Not sent: maxInFlight requests were already waiting (the server stopped answering). */
  notSent: number;
  ok: number;
  rejected503: number;
  otherStatus: number;
  errors: number;
  timeouts: number;
  /** Share of the answered requests that got 503. */
  rejectedShare: number;
  /** 2xx answers per second: what the server delivered under overload. */
  admittedRps: number;
  okP50Ms: number | null;
  okP99Ms: number | null;
  okMaxMs: number | null;
  rejectP50Ms: number | null;
  rejectP99Ms: number | null;
  /** Share of the 503s that carried a Retry-After header. */
  retryAfterShare: number | null;
  /** Connections the generator opened. */
  connections: number;
}

function pct(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? null;
}

export async function runRate(port: number, path: string, rps: number, durationS: number, timeoutS: number, maxInFlight: number): Promise<RateFigures> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: maxInFlight });
  let connections = 0;
  const okMs: number[] = [];
  const rejectMs: number[] = [];
  const f = { sent: 0, notSent: 0, ok: 0, rejected503: 0, otherStatus: 0, errors: 0, timeouts: 0, retryAfter: 0 };
  let inFlight = 0;
  const pending = new Set<Promise<void>>();

  const one = (): Promise<void> =>
    new Promise<void>((resolve) => {
      const t0 = performance.now();
      inFlight++;
      f.sent++;
      let done = false;
      const finish = (kind: 'ok' | '503' | 'other' | 'error' | 'timeout', retryAfter = false): void => {
        if (done) return;
        done = true;
        inFlight--;
        const ms = performance.now() - t0;
        if (kind === 'ok') {
          f.ok++;
          okMs.push(ms);
        } else if (kind === '503') {
          f.rejected503++;
          rejectMs.push(ms);
          if (retryAfter) f.retryAfter++;
        } else if (kind === 'other') f.otherStatus++;
        else if (kind === 'error') f.errors++;
        else f.timeouts++;
        resolve();
      };
      const req = http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
        res.resume();
        res.on('end', () => {
          const s = res.statusCode ?? 0;
          finish(s >= 200 && s < 300 ? 'ok' : s === 503 ? '503' : 'other', res.headers['retry-after'] !== undefined);
        });
        res.on('error', () => finish('error'));
      });
      req.on('socket', (sock) => {
        if (!(sock as { benchSeen?: boolean }).benchSeen) {
          (sock as { benchSeen?: boolean }).benchSeen = true;
          connections++;
        }
      });
      req.setTimeout(timeoutS * 1000, () => {
        finish('timeout');
        req.destroy();
      });
      req.on('error', () => finish('error'));
    });

  const start = performance.now();
  const endMs = durationS * 1000;
  let due = 0;
  // Every millisecond or so, send what the schedule owes by now (timers are coarse; the
  // schedule, not the timer, fixes the rate).
  for (;;) {
    const elapsed = performance.now() - start;
    if (elapsed >= endMs) break;
    const owed = Math.floor((elapsed / 1000) * rps) - due;
    for (let i = 0; i < owed; i++) {
      due++;
      if (inFlight >= maxInFlight) {
        f.notSent++;
        continue;
      }
      const p = one();
      pending.add(p);
      void p.then(() => pending.delete(p));
    }
    await sleep(1);
  }
  const actualS = (performance.now() - start) / 1000;
  await Promise.all([...pending]);
  agent.destroy();
  okMs.sort((a, b) => a - b);
  rejectMs.sort((a, b) => a - b);
  const answered = f.ok + f.rejected503 + f.otherStatus;
  return {
    offeredRps: rps,
    durationS: actualS,
    sent: f.sent,
    notSent: f.notSent,
    ok: f.ok,
    rejected503: f.rejected503,
    otherStatus: f.otherStatus,
    errors: f.errors,
    timeouts: f.timeouts,
    rejectedShare: answered ? f.rejected503 / answered : 0,
    admittedRps: f.ok / actualS,
    okP50Ms: pct(okMs, 50),
    okP99Ms: pct(okMs, 99),
    okMaxMs: okMs.at(-1) ?? null,
    rejectP50Ms: pct(rejectMs, 50),
    rejectP99Ms: pct(rejectMs, 99),
    retryAfterShare: f.rejected503 ? f.retryAfter / f.rejected503 : null,
    connections,
  };
}
