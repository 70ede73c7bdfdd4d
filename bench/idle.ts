/**
 * @module bench/idle
 * The idle-connection load: a client process (bench/idle-client.ts) opens N keep-alive
 * connections, one GET each, then silence. We read the front process's RSS (VmRSS of the process
 * that holds the connections: for ours, the Node.js front only, not the primary nor the Python
 * workers; for the others, the process started) before and after, and
 * count the connection sockets the server's processes really hold (from /proc/PID/fd: what
 * the client believes is open can differ), once the connects settle and again `holdS` later
 * (idle timeouts show there).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BENCH_DIR, REPO_ROOT } from './servers.js';
import { rssKb, serverProcesses, socketInodes, trackHelper, withNofile } from './proc.js';
import type { IdleLoad } from './scenarios.js';

export interface ClientCounts {
  attempted: number; connected: number; answered: number; open: number; errors: number; closedByServer: number;
}

export interface IdleFigures {
  asked: number;
  /** Client's view when every connect had settled. */
  client: ClientCounts | null;
  /** Client's view `holdS` later. */
  clientLater: ClientCounts | null;
  /** New connection sockets held by the server's processes, once settled / `holdS` later. */
  held: number;
  heldLater: number;
  holdS: number;
  frontRssBeforeKb: number;
  /** Right after the connects settled: includes V8's young generation, grown by the storm. */
  frontRssAfterKb: number;
  /** At the end of the hold: V8's memory reducer has given the storm's garbage back by then. */
  frontRssLaterKb: number;
  /** Summed over the server's processes: its session and what descends from it (workers included; shared pages counted per process). */
  sessionRssBeforeKb: number;
  sessionRssAfterKb: number;
  sessionRssLaterKb: number;
  /** Growth of the front's RSS per held connection; null when it held under a fifth of them. */
  bytesPerConn: number | null;
  /** The same at the end of the hold: what an idle connection costs once the storm is over. */
  bytesPerConnLater: number | null;
  /** The same over the whole session: the fair figure for multi-process peers. */
  sessionBytesPerConn: number | null;
  sessionBytesPerConnLater: number | null;
}

const sessionRss = (sid: number): number => serverProcesses(sid).reduce((sum, pid) => sum + rssKb(pid), 0);

/** Lines of the client's stdout that start with a tag, parsed; null at the deadline or exit. */
class TaggedReader {
  private readonly waiting: Array<(line: string | null) => void> = [];
  private readonly lines: string[] = [];
  private closed = false;
  constructor(rl: Interface) {
    rl.on('line', (l) => {
      const w = this.waiting.shift();
      if (w) w(l);
      else this.lines.push(l);
    });
    rl.on('close', () => {
      this.closed = true;
      for (const w of this.waiting.splice(0)) w(null);
    });
  }
  private next(deadline: number): Promise<string | null> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiting.splice(this.waiting.indexOf(done), 1);
        resolve(null);
      }, Math.max(0, deadline - Date.now()));
      const done = (line: string | null): void => {
        clearTimeout(t);
        resolve(line);
      };
      this.waiting.push(done);
    });
  }
  async tagged(tag: string, timeoutMs: number): Promise<ClientCounts | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = await this.next(deadline);
      if (line === null) return null;
      if (line.startsWith(`${tag} `)) return JSON.parse(line.slice(tag.length + 1)) as ClientCounts;
    }
  }
}

/** Sockets held by the server's session, polled until stable for 500 ms (at most 5 s). */
async function settledSockets(sid: number): Promise<Set<string>> {
  let last = socketInodes(serverProcesses(sid));
  let stableSince = Date.now();
  const end = Date.now() + 5000;
  while (Date.now() < end && Date.now() - stableSince < 500) {
    await sleep(100);
    const now = socketInodes(serverProcesses(sid));
    if (now.size !== last.size) stableSince = Date.now();
    last = now;
  }
  return last;
}

function newOnes(after: Set<string>, before: Set<string>): number {
  let n = 0;
  for (const s of after) if (!before.has(s)) n++;
  return n;
}

/** Growth per held connection, in bytes; null under a fifth held (the growth is then mostly noise). */
function perConn(growthKb: number, held: number, asked: number): number | null {
  return held >= asked / 5 ? (growthKb * 1024) / held : null;
}

export async function runIdle(load: IdleLoad, port: number, path: string, serverPid: number): Promise<IdleFigures> {
  const before = socketInodes(serverProcesses(serverPid));
  const frontBefore = rssKb(serverPid);
  const sessionBefore = sessionRss(serverPid);
  const settleS = 30;
  const maxS = settleS + load.holdS + 60; // the client's own bound: it never outlives us long
  const argv = withNofile(['node', '--import', 'tsx', join(BENCH_DIR, 'idle-client.ts'),
    String(port), String(load.conns), path, String(settleS), String(maxS)]);
  const client: ChildProcessWithoutNullStreams = spawn(argv[0]!, argv.slice(1), { cwd: REPO_ROOT, stdio: 'pipe' });
  trackHelper(client);
  client.stderr.resume();
  const reader = new TaggedReader(createInterface({ input: client.stdout }));
  const command = (cmd: string): void => {
    if (client.exitCode === null) client.stdin.write(`${cmd}\n`);
  };
  try {
    const atReady = await reader.tagged('READY', (settleS + 10) * 1000);
    const afterSet = await settledSockets(serverPid);
    const frontAfter = rssKb(serverPid);
    const sessionAfter = sessionRss(serverPid);
    const held = newOnes(afterSet, before);
    await sleep(load.holdS * 1000); // the point of the measure: does it still hold them later?
    const heldLater = newOnes(socketInodes(serverProcesses(serverPid)), before);
    const frontLater = rssKb(serverPid);
    const sessionLater = sessionRss(serverPid);
    command('status');
    const later = await reader.tagged('STATUS', 5000);
    command('stop');
    await reader.tagged('DONE', 10_000);
    return {
      asked: load.conns, client: atReady, clientLater: later, held, heldLater, holdS: load.holdS,
      frontRssBeforeKb: frontBefore, frontRssAfterKb: frontAfter, frontRssLaterKb: frontLater,
      sessionRssBeforeKb: sessionBefore, sessionRssAfterKb: sessionAfter, sessionRssLaterKb: sessionLater,
      bytesPerConn: perConn(frontAfter - frontBefore, held, load.conns),
      bytesPerConnLater: perConn(frontLater - frontBefore, heldLater, load.conns),
      sessionBytesPerConn: perConn(sessionAfter - sessionBefore, held, load.conns),
      sessionBytesPerConnLater: perConn(sessionLater - sessionBefore, heldLater, load.conns),
    };
  } finally {
    if (client.exitCode === null && client.signalCode === null) {
      client.kill('SIGKILL'); // by its PID: our own child
    }
  }
}
