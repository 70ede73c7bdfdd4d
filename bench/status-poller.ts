/**
 * @module bench/status-poller
 * A status page left open during a load: GET /status.json once a second on one keep-alive
 * connection, as assets/status/status.js does (one fetch after another, a second apart), so the
 * `status-cost` scenario can compare the server with and without it. The answers are read in
 * full (the page parses them); the figures say how many came back 200 and how long they took.
 * `statusPollCpu` measures what one poll costs the server in CPU, on the idle server.
 */
import http from 'node:http';
import { CpuMeter, type CpuFigures } from './cpu.js';

export interface StatusPollFigures {
  polls: number;
  ok: number;
  failed: number;
  /** Median time of an answer, ms (null: none). */
  medianMs: number | null;
  /** Bytes of the last answer: the size of what the page parses every second. */
  lastBytes: number;
}

const PATH = '/status.json';
const INTERVAL_MS = 1_000;
const TIMEOUT_MS = 5_000;
/** Polls of the idle server whose CPU gives the cost of one. */
export const CPU_POLLS = 200;

/** One GET of the status data on `agent`'s connection: the body's bytes (rejects unless 200). */
function fetchStatus(port: number, agent: http.Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: PATH, agent, timeout: TIMEOUT_MS }, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => { bytes += chunk.length; });
      res.on('end', () => (res.statusCode === 200 ? resolve(bytes) : reject(new Error(`status ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

export class StatusPoller {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  private readonly times: number[] = [];
  private polls = 0;
  private failed = 0;
  private lastBytes = 0;
  private running = true;
  private readonly done: Promise<void>;

  constructor(private readonly port: number) {
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const started = performance.now();
      this.polls += 1;
      try {
        this.lastBytes = await fetchStatus(this.port, this.agent);
        this.times.push(performance.now() - started);
      } catch {
        this.failed += 1;
      }
      const wait = Math.max(0, INTERVAL_MS - (performance.now() - started));
      if (this.running) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  async finish(): Promise<StatusPollFigures> {
    this.running = false;
    await this.done;
    this.agent.destroy();
    const sorted = [...this.times].sort((a, b) => a - b);
    return {
      polls: this.polls, ok: this.times.length, failed: this.failed,
      medianMs: sorted.length === 0 ? null : sorted[Math.floor(sorted.length / 2)]!, lastBytes: this.lastBytes,
    };
  }
}

/**
 * The CPU one status page poll costs the server (its whole tree: the front that answers, the
 * primary that gathers, every front that sends its part), measured on the idle server with
 * CPU_POLLS polls in a row: a figure the machine's other work disturbs far less than req/s.
 */
export async function statusPollCpu(port: number, pid: number, withRoles: boolean): Promise<CpuFigures> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    await fetchStatus(port, agent);
    const meter = new CpuMeter(pid, withRoles);
    for (let n = 0; n < CPU_POLLS; n += 1) await fetchStatus(port, agent);
    return meter.stop()(CPU_POLLS);
  } finally {
    agent.destroy();
  }
}
