/**
 * @module bench/conns
 * How a load's connections spread over the server's processes (the `fronts` scenario: over
 * ours' front processes), sampled once in the middle of the load with
 * `ss -Htnp state established '( sport = :PORT )'`: the server's side of each connection and
 * the processes that hold its descriptor (`users:(("node",pid=123,fd=45))`). ss asks the kernel
 * through netlink, in a child process, off our event loop (see listenq.ts for why not
 * /proc/net/tcp).
 */
import { execFile } from 'node:child_process';
import { procStat, serverProcesses } from './proc.js';

export interface ConnSpread {
  /** Seconds into the load when it was sampled. */
  atS: number;
  /** Established connections on the port at that moment (the server's side). */
  total: number;
  /**
   * Per process of the server holding any, most first; `child`: a child of the PID started
   * (ours: a front; gunicorn, uWSGI: a worker of the master).
   */
  byPid: { pid: number; conns: number; child: boolean }[];
}

/** Established connections on the server's side of `port`, per holding PID, or null if ss failed. */
export function connsByPid(port: number): Promise<{ total: number; byPid: Map<number, number> } | null> {
  return new Promise((resolve) => {
    execFile('ss', ['-Htnp', 'state', 'established', `( sport = :${port} )`], { timeout: 5000, maxBuffer: 64 * 1024 ** 2 }, (err, stdout) => {
      if (err) return resolve(null);
      const byPid = new Map<number, number>();
      let total = 0;
      for (const line of stdout.split('\n')) {
        if (!line.trim()) continue;
        total++;
        for (const pid of new Set([...line.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]))))
          byPid.set(pid, (byPid.get(pid) ?? 0) + 1);
      }
      resolve({ total, byPid });
    });
  });
}

/** Samples once, `atMs` after it is made; {@link finish} waits for that sample (null if the load ended first). */
export class ConnSpreadSampler {
  private readonly timer: NodeJS.Timeout;
  private pending: Promise<ConnSpread | null> | null = null;
  private readonly t0 = Date.now();

  constructor(
    private readonly port: number,
    private readonly serverPid: number,
    atMs: number,
  ) {
    this.timer = setTimeout(() => {
      this.pending = this.sample();
    }, atMs);
  }

  private async sample(): Promise<ConnSpread | null> {
    const atS = (Date.now() - this.t0) / 1000;
    const got = await connsByPid(this.port);
    if (!got) return null;
    const ours = new Set(serverProcesses(this.serverPid));
    const byPid = [...got.byPid]
      .filter(([pid]) => ours.has(pid))
      .map(([pid, conns]) => ({ pid, conns, child: procStat(pid)?.ppid === this.serverPid }))
      .sort((a, b) => b.conns - a.conns);
    return { atS, total: got.total, byPid };
  }

  async finish(): Promise<ConnSpread | null> {
    clearTimeout(this.timer);
    return this.pending ? this.pending : null;
  }
}
