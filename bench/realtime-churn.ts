/**
 * @module bench/realtime-churn
 * The realtime scenario's two correctness-under-load runs (issue 12's "nothing lost under churn"
 * and "the same with two instances through Redis"), measured, not asserted:
 *
 * - `--mode churn`: a stable group of subscribers plus churners that join and drop abruptly
 *   (TCP reset, no close frame) in a loop, while numbered messages are published (8 POSTs in
 *   flight, so their order is not defined). Every stable subscriber must receive every message
 *   exactly once; a churner may miss what was published while it was away but never gets one twice.
 * - `--mode redis`: two instances of ours on one real `redis-server` (Debian's, on a free port,
 *   stopped by PID), stable subscribers and churners split between them, POSTs alternating
 *   between them: deliveries per second, p50/p99 and losses across instances.
 *
 *   npm run bench -- --only realtime --mode churn --subscribers 500 --duration 8
 *   npm run bench -- --only realtime --mode redis --subscribers 1000 --duration 8
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { WebSocket } from 'ws';
import { freePort } from './proc.js';
import { IN_FLIGHT, KEY, MESSAGE_BYTES, ours, seatAll, waitListening, type Target } from './realtime.js';

const GROUP = 'bench';

/** A subscriber's record of the numbered messages it got (presence notices `+x`/`-x` ignored). */
class Received {
  readonly seqs: number[] = [];
  readonly latencies: number[] = [];
  duplicates = 0;
  private readonly seen = new Set<number>();

  take(data: Buffer): void {
    if (data[0] === 0x2b /* + */ || data[0] === 0x2d /* - */) return;
    const [seqText, sentText] = data.toString('latin1', 0, 40).split(' ');
    const seq = Number(seqText);
    if (this.seen.has(seq)) { this.duplicates += 1; return; }
    this.seen.add(seq);
    this.seqs.push(seq);
    this.latencies.push(performance.now() - Number(sentText));
  }

  has(seq: number): boolean { return this.seen.has(seq); }
}

function open(url: string, received: Received): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.on('message', (data: Buffer) => received.take(data));
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

async function seat(urls: string[], count: number): Promise<{ sockets: WebSocket[]; received: Received[] }> {
  const received = Array.from({ length: count }, () => new Received());
  const sockets = await seatAll(urls, count, (index) => (data) => received[index]!.take(data));
  return { sockets, received };
}

/** Publishes numbered messages, IN_FLIGHT POSTs at a time, to the URLs in turn until `end`. */
async function publish(urls: string[], signed: boolean, end: number): Promise<{ posts: number; failed: number }> {
  let next = 0;
  let failed = 0;
  const publisher = async (): Promise<void> => {
    while (performance.now() < end) {
      const seq = next++;
      const message = `${seq} ${performance.now()} `.padEnd(MESSAGE_BYTES, 'x');
      const signature = signed ? createHmac('md5', KEY).update(message).digest('hex') : '';
      try {
        const response = await fetch(urls[seq % urls.length]!, { method: 'POST', body: new URLSearchParams({ message, signature, group: GROUP }) });
        await response.arrayBuffer();
        if (!response.ok) failed += 1;
      } catch {
        failed += 1;
      }
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, publisher));
  return { posts: next, failed };
}

async function settle(received: Received[], posts: number, timeoutMs = 15_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline && received.some((r) => r.seqs.length < posts)) await new Promise((r) => setTimeout(r, 50));
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

async function stopAll(children: ChildProcess[]): Promise<void> {
  await Promise.all(children.map((child) => new Promise((r) => {
    if (child.exitCode !== null || child.signalCode !== null) { r(null); return; }
    child.once('exit', r);
    child.kill('SIGTERM');
  })));
}

/** Churners: each joins one of the URLs, stays 0–200 ms, drops abruptly (TCP reset), again, until stopped. */
function startChurn(urls: string[], churners: number): { stop(): Promise<{ joins: number; duplicates: number }> } {
  let isDone = false;
  let joins = 0;
  let duplicates = 0;
  const churner = async (index: number): Promise<void> => {
    while (!isDone) {
      const r = new Received();
      try {
        const ws = await open(urls[(index + joins) % urls.length]!, r);
        joins += 1;
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 200));
        ws.terminate();
      } catch { /* refused or reset while the server was busy: try again */ }
      duplicates += r.duplicates;
    }
  };
  const running = Array.from({ length: churners }, (_, index) => churner(index));
  return {
    async stop() {
      isDone = true;
      await Promise.all(running);
      return { joins, duplicates };
    },
  };
}

export async function runChurn(target: Target, stable: number, churners: number, durationS: number): Promise<string> {
  const port = await freePort();
  const child = target.start(port);
  try {
    await waitListening(port);
    const url = target.joinUrl(port, GROUP);
    const { sockets, received } = await seat([url], stable);
    const churn = startChurn([url], churners);
    const { posts, failed } = await publish([target.publishUrl(port)], target.signed, performance.now() + durationS * 1000);
    const { joins, duplicates: churnDuplicates } = await churn.stop();
    await settle(received, posts);
    const lost = received.reduce((sum, r) => sum + (posts - r.seqs.length), 0);
    const duplicated = received.reduce((sum, r) => sum + r.duplicates, 0) + churnDuplicates;
    for (const ws of sockets) ws.terminate();
    return `| ${target.name} | ${stable} | ${churners} | ${joins} | ${posts} | ${failed} | ${lost} | ${duplicated} |`;
  } finally {
    await stopAll([child]);
  }
}

export async function runTwoInstances(subscribers: number, churners: number, durationS: number): Promise<string> {
  const redisPort = await freePort();
  const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const ports = [await freePort(), await freePort()];
  const instances = ports.map((port, i) => ours(`ours-${i + 1}`, ['--realtime-redis', `redis://127.0.0.1:${redisPort}`, '--realtime-presence', 'off']).start(port));
  const target = ours('ours', []);
  try {
    await Promise.all(ports.map((port) => waitListening(port)));
    const seatStart = performance.now();
    const { sockets, received } = await seat(ports.map((port) => target.joinUrl(port, GROUP)), subscribers);
    const seatSeconds = (performance.now() - seatStart) / 1000;
    const churn = startChurn(ports.map((port) => target.joinUrl(port, GROUP)), churners);
    const started = performance.now();
    const { posts, failed } = await publish(ports.map((port) => target.publishUrl(port)), true, started + durationS * 1000);
    const { joins, duplicates: churnDuplicates } = await churn.stop();
    await settle(received, posts);
    const elapsed = (performance.now() - started) / 1000;
    const delivered = received.reduce((sum, r) => sum + r.seqs.length, 0);
    const duplicated = received.reduce((sum, r) => sum + r.duplicates, 0) + churnDuplicates;
    const latencies = received.flatMap((r) => r.latencies).sort((x, y) => x - y);
    for (const ws of sockets) ws.terminate();
    return `| ours ×2 + Redis | ${subscribers} | ${churners} | ${joins} | ${seatSeconds.toFixed(1)} s | ${posts} | ${failed} | ${Math.round(delivered / elapsed)} `
      + `| ${posts * subscribers - delivered} | ${duplicated} | ${percentile(latencies, 0.5).toFixed(1)} ms | ${percentile(latencies, 0.99).toFixed(1)} ms |`;
  } finally {
    await stopAll([...instances, redis]);
  }
}

export async function runChurnBench(mode: 'churn' | 'redis', targets: Target[], counts: number[], durationS: number, churners: number): Promise<void> {
  const rows: string[] = [];
  for (const subscribers of counts) {
    if (mode === 'redis') {
      process.stderr.write(`realtime redis: two instances, ${subscribers} subscribers...\n`);
      rows.push(await runTwoInstances(subscribers, churners, durationS));
      continue;
    }
    for (const target of targets) {
      process.stderr.write(`realtime churn: ${target.name}, ${subscribers} stable + ${churners} churning...\n`);
      rows.push(await runChurn(target, subscribers, churners, durationS));
    }
  }
  process.stdout.write(mode === 'redis'
    ? '| servers | stable subscribers | churners | churn joins | seated in | POSTs | failed POSTs | deliveries/s (stable) | lost (stable) | duplicated | p50 latency | p99 latency |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n'
    : '| server | stable subscribers | churners | churn joins | POSTs | failed POSTs | lost (stable) | duplicated |\n|---|---|---|---|---|---|---|---|\n');
  process.stdout.write(`${rows.join('\n')}\n`);
}
