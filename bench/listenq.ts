/**
 * @module bench/listenq
 * Samples the server's accept queue during a load with `ss -Hltn 'sport = :PORT'`: for a
 * LISTEN socket, Recv-Q is the number of connections the kernel has completed but the server
 * has not accept()ed yet, and Send-Q its backlog limit.
 *
 * Why: a saturated single-threaded server (raw Node.js at -c1000 on 2 cores, for one) reads
 * its busy connections first and accepts slowly; connections that arrived late in wrk's opening
 * storm wait in this queue for seconds, which wrk shows only as timeouts, and newcomers queue
 * behind them. Whether the storm lands before or after the server saturates changes from run
 * to run, so the report flags the rows where the queue stayed full.
 *
 * Why ss and not /proc/net/tcp: servers that close every connection leave tens of thousands of
 * TIME_WAIT sockets, and reading /proc/net/tcp then takes hundreds of ms, synchronously, which
 * stalled this process's newcomer probe. ss asks the kernel through netlink for listening
 * sockets only, in a child process, off our event loop.
 */
import { execFile } from 'node:child_process';

export interface ListenQueueFigures {
  /** Backlog limit the server asked for (capped by net.core.somaxconn); null if never read. */
  backlog: number | null;
  /** Largest accept queue seen. */
  maxQueued: number;
  /** Sampled time with a non-empty queue, ms (sampling interval × non-empty samples). */
  nonEmptyMs: number;
  samples: number;
  intervalMs: number;
}

/** Queued connections and backlog of the LISTEN socket(s) on `port`, or null. */
export function listenQueue(port: number): Promise<{ queued: number; backlog: number } | null> {
  return new Promise((resolve) => {
    execFile('ss', ['-Hltn', `sport = :${port}`], { timeout: 2000 }, (err, stdout) => {
      if (err) return resolve(null);
      let found = false;
      let queued = 0;
      let backlog = 0;
      for (const line of stdout.split('\n')) {
        // "LISTEN 0      511    127.0.0.1:40123 0.0.0.0:*"
        const f = line.trim().split(/\s+/);
        if (f[0] !== 'LISTEN') continue;
        found = true;
        queued += Number(f[1] ?? 0);
        backlog += Number(f[2] ?? 0);
      }
      resolve(found ? { queued, backlog } : null);
    });
  });
}

export class ListenQueueSampler {
  private readonly timer: NodeJS.Timeout;
  private busy = false;
  private maxQueued = 0;
  private nonEmpty = 0;
  private samples = 0;
  private backlog: number | null = null;

  constructor(
    private readonly port: number,
    private readonly intervalMs = 200,
  ) {
    this.timer = setInterval(() => void this.sample(), intervalMs);
  }

  private async sample(): Promise<void> {
    if (this.busy) return; // never pile up ss processes on a loaded machine
    this.busy = true;
    try {
      const q = await listenQueue(this.port);
      if (!q) return;
      this.samples++;
      this.backlog = q.backlog;
      this.maxQueued = Math.max(this.maxQueued, q.queued);
      if (q.queued > 0) this.nonEmpty++;
    } finally {
      this.busy = false;
    }
  }

  finish(): ListenQueueFigures {
    clearInterval(this.timer);
    return {
      backlog: this.backlog,
      maxQueued: this.maxQueued,
      nonEmptyMs: this.nonEmpty * this.intervalMs,
      samples: this.samples,
      intervalMs: this.intervalMs,
    };
  }
}
