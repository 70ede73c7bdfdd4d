/**
 * @module bench/h2load
 * TLS load with nghttp2's h2load, the same tool for both protocols so the two rows compare:
 * `h2load -D S -c N -m M https://...` (HTTP/2, M streams at once per connection) and the same
 * with `--h1` (HTTP/1.1 over TLS, keep-alive, one request at a time per connection). h2load
 * gives min/max/mean request times but no percentiles: p50/p90/p99 are left out (NaN, shown "-").
 * The figures take wrk's shape so the tables and the JSON hold them unchanged.
 */
import { withNofile } from './proc.js';
import { runCollect, type WrkFigures } from './wrk.js';

export const H2LOAD = '/usr/bin/h2load';

/** `407us`, `26.26ms`, `1.2s` → milliseconds. */
function toMs(text: string | undefined): number {
  const match = /^([\d.]+)(us|ms|s)$/.exec(text ?? '');
  if (match === null) return Number.NaN;
  const value = Number(match[1]);
  return match[2] === 'us' ? value / 1000 : match[2] === 's' ? value * 1000 : value;
}

export async function runH2load(url: string, options: { h1: boolean; conns: number; streams: number; durationS: number }): Promise<WrkFigures> {
  const { h1, conns, streams, durationS } = options;
  const argv = withNofile([H2LOAD, '-D', String(durationS), `-c${conns}`, `-m${streams}`, '-t1', ...(h1 ? ['--h1'] : []), url]);
  const { code, out } = await runCollect(argv, (durationS + 40) * 1000);
  const finished = /^finished in ([\d.]+\w+), ([\d.]+) req\/s/m.exec(out);
  const requests = /^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/m.exec(out);
  const statuses = /^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/m.exec(out);
  const times = /^time for request:\s+(\S+)\s+(\S+)\s+(\S+)/m.exec(out);
  const protocol = /^Application protocol: (\S+)/m.exec(out)?.[1];
  if (finished === null || requests === null) throw new Error(`h2load failed (exit ${code}): ${out.trim().slice(0, 300)}`);
  const wanted = h1 ? 'http/1.1' : 'h2';
  if (protocol !== wanted) throw new Error(`h2load negotiated ${protocol ?? 'nothing'}, not ${wanted}`);
  const rps = Number(finished[2]);
  const meanMs = toMs(times?.[3]);
  return {
    requests: Number(requests[4]),
    durationS: toMs(finished[1]) / 1000,
    rps,
    p50Ms: Number.NaN,
    p90Ms: Number.NaN,
    p99Ms: Number.NaN,
    maxMs: toMs(times?.[2]),
    meanMs,
    errors: {
      connect: 0,
      read: Number(requests[6]),
      write: 0,
      status: Number(statuses?.[3] ?? 0) + Number(statuses?.[4] ?? 0),
      timeout: Number(requests[7]),
    },
    // Little's law over streams: requests in flight on average, against conns × streams.
    busyConns: (rps * meanMs) / 1000 / streams,
    closesEveryConnection: false,
  };
}
