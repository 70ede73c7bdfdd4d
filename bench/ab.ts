/**
 * @module bench/ab
 * No keep-alive load with ApacheBench, as peerbench: `ab -r -c N -t S` (HTTP/1.0, a new
 * connection per request; -r so receive errors are counted, not fatal), percentiles from its
 * `-e` CSV (all requests, ms). The figures take the same shape as wrk's so one table holds both.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withNofile } from './proc.js';
import { runCollect, type WrkFigures } from './wrk.js';

export async function runAb(url: string, conns: number, durationS: number): Promise<WrkFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-ab-'));
  const csv = join(dir, 'percentiles.csv');
  try {
    const argv = withNofile(['ab', '-q', '-r', `-c${conns}`, `-t${durationS}`, '-n1000000', '-e', csv, url]);
    const { code, out } = await runCollect(argv, (durationS + 40) * 1000);
    const num = (label: string): number => Number(new RegExp(`^${label}:\\s+([\\d.]+)`, 'm').exec(out)?.[1] ?? 0);
    if (!/^Complete requests:/m.test(out)) throw new Error(`ab failed (exit ${code}): ${out.trim().slice(0, 300)}`);
    const pct = new Map<string, number>();
    for (const line of readFileSync(csv, 'utf8').split('\n').slice(1)) {
      const [p, ms] = line.split(',');
      if (p !== undefined && ms !== undefined) pct.set(p, Number(ms));
    }
    const m = /\(Connect: (\d+), Receive: (\d+), Length: (\d+), Exceptions: (\d+)\)/.exec(out);
    const requests = num('Complete requests');
    const timeTaken = num('Time taken for tests');
    const rps = num('Requests per second');
    // "Time per request" (mean, across all concurrent requests) is the first of the two lines
    const meanMs = num('Time per request');
    return {
      requests,
      durationS: timeTaken,
      rps,
      p50Ms: pct.get('50') ?? 0,
      p90Ms: pct.get('90') ?? 0,
      p99Ms: pct.get('99') ?? 0,
      maxMs: pct.get('100') ?? 0,
      meanMs,
      // ab's failures: connect, receive + exceptions (as read); "length" (a body length other
      // than the first answer's) is no error for a server, so not counted
      errors: {
        connect: Number(m?.[1] ?? 0),
        read: Number(m?.[2] ?? 0) + Number(m?.[4] ?? 0),
        write: 0,
        status: num('Non-2xx responses'),
        timeout: 0,
      },
      busyConns: (rps * meanMs) / 1000,
      closesEveryConnection: false,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
