/**
 * @module bench/realtime
 * `npm run bench -- --only realtime` (or `node --import tsx bench/realtime.ts`): the realtime hub
 * against web2py's own Tornado server (`python3 -m gluon.contrib.websocket_messaging`, run as a
 * module from the web2py tree) and a minimal raw `ws` broadcast server (the limit), one after the
 * other on loopback. For each subscriber count: the time to seat them all in one group, the
 * server's memory per connection, then publish POSTs of 100-byte messages (8 in flight) for
 * `--duration` seconds: deliveries per second and the p50/p99 delivery latency (POST sent →
 * message received). Subscribers and publisher share this process (one clock).
 *
 *   node --import tsx bench/realtime.ts --subscribers 1000,5000 --duration 8 --web2py /work/w2p
 *
 * `--mode churn` and `--mode redis` are bench/realtime-churn.ts (losses under churn; two instances).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import { freePort } from './proc.js';

const REPO = join(import.meta.dirname, '..');
export const KEY = 'bench-key';
export const MESSAGE_BYTES = 100;
export const IN_FLIGHT = 8;

export interface Target {
  name: string;
  start(port: number): ChildProcess;
  /** Processes whose memory is the server's (the fronts for ours). */
  pids(child: ChildProcess): number[];
  publishUrl(port: number): string;
  joinUrl(port: number, group: string): string;
  signed: boolean;
}

export function childPids(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export function rssBytes(pids: number[]): number {
  let total = 0;
  for (const pid of pids) {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    total += match ? Number(match[1]) * 1024 : 0;
  }
  return total;
}

export function ours(name: string, extra: string[]): Target {
  return {
    name, signed: true,
    start: (port) => spawn(process.execPath, [join(REPO, 'bin', 'web2py-on-node'), '-p', String(port), '--app', 'hello:app', '-f', join(REPO, 'bench', 'apps'),
      '--processes', '1', '--realtime-key', KEY, '--max-connections', '30000', '--realtime-max-connections', '25000', '--log-level', 'error', ...extra],
    { stdio: ['ignore', 'pipe', 'inherit'] }),
    // The front is the primary's child whose own children are the Python workers.
    pids: (child) => childPids(child.pid!).filter((pid) => /node/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'))),
    publishUrl: (port) => `http://127.0.0.1:${port}/_ws/`,
    joinUrl: (port, group) => `ws://127.0.0.1:${port}/_ws/realtime/${group}`,
  };
}

export function targets(web2py: string): Target[] {
  return [
    ours('ours', []),
    // Without the +name notices (quadratic in the group's size), as the raw ws server.
    ours('ours-nopresence', ['--realtime-presence', 'off']),
    {
      name: 'tornado', signed: true,
      start: (port) => spawn('/usr/bin/python3', ['-m', 'gluon.contrib.websocket_messaging', '-k', KEY, '-p', String(port), '-l', '127.0.0.1'],
        { cwd: web2py, stdio: ['ignore', 'ignore', 'inherit'] }),
      pids: (child) => [child.pid!],
      publishUrl: (port) => `http://127.0.0.1:${port}/`,
      joinUrl: (port, group) => `ws://127.0.0.1:${port}/realtime/${group}`,
    },
    {
      name: 'raw-ws', signed: false,
      start: (port) => spawn(process.execPath, [join(REPO, 'bench', 'apps', 'node_ws_broadcast.mjs'), String(port)], { stdio: ['ignore', 'ignore', 'inherit'] }),
      pids: (child) => [child.pid!],
      publishUrl: (port) => `http://127.0.0.1:${port}/`,
      joinUrl: (port, group) => `ws://127.0.0.1:${port}/realtime/${group}`,
    },
  ];
}

export async function waitListening(port: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await fetch(`http://127.0.0.1:${port}/`, { method: 'HEAD' });
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`nothing listening on ${port}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Opens `count` WebSockets, 200 at a time, the i-th to `urls[i % urls.length]`, each with `onMessage(i)`'s handler. */
export async function seatAll(urls: string[], count: number, onMessage: (index: number) => (data: Buffer) => void): Promise<WebSocket[]> {
  const sockets: WebSocket[] = [];
  for (let opened = 0; opened < count;) {
    const batch = Math.min(200, count - opened);
    await Promise.all(Array.from({ length: batch }, (_, i) => new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(urls[(opened + i) % urls.length]!, { perMessageDeflate: false });
      ws.on('message', onMessage(opened + i));
      ws.once('open', () => resolve());
      ws.once('error', reject);
      sockets.push(ws);
    })));
    opened += batch;
  }
  return sockets;
}

interface Figures {
  server: string;
  subscribers: number;
  seatSeconds: number;
  bytesPerConnection: number;
  posts: number;
  deliveriesPerSecond: number;
  lost: number;
  p50Ms: number;
  p99Ms: number;
}

async function measure(target: Target, subscribers: number, durationS: number): Promise<Figures> {
  const port = await freePort();
  const child = target.start(port);
  try {
    await waitListening(port);
    await new Promise((r) => setTimeout(r, 1000));
    const baseline = rssBytes(target.pids(child));
    const latencies: number[] = [];
    let delivered = 0;
    let counting = false;
    const seatStart = performance.now();
    const sockets = await seatAll([target.joinUrl(port, 'bench')], subscribers, () => (data) => {
      if (!counting || data[0] === 0x2b /* + */ || data[0] === 0x2d /* - */) return;
      delivered += 1;
      latencies.push(performance.now() - Number(data.toString('latin1', 0, 20).trim()));
    });
    const seatSeconds = (performance.now() - seatStart) / 1000;
    // Presence notices of the joins drain before the load.
    await new Promise((r) => setTimeout(r, 2000));
    const seated = rssBytes(target.pids(child));
    counting = true;
    let posts = 0;
    const url = target.publishUrl(port);
    const end = performance.now() + durationS * 1000;
    const publisher = async (): Promise<void> => {
      while (performance.now() < end) {
        const message = String(performance.now()).padEnd(20, ' ').padEnd(MESSAGE_BYTES, 'x');
        const signature = target.signed ? createHmac('md5', KEY).update(message).digest('hex') : '';
        const response = await fetch(url, { method: 'POST', body: new URLSearchParams({ message, signature, group: 'bench' }) });
        await response.arrayBuffer();
        posts += 1;
      }
    };
    const started = performance.now();
    await Promise.all(Array.from({ length: IN_FLIGHT }, publisher));
    // The deliveries of the last posts arrive; then stop counting.
    const expected = posts * subscribers;
    const deadline = performance.now() + 10_000;
    while (delivered < expected && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const elapsed = (performance.now() - started) / 1000;
    counting = false;
    latencies.sort((x, y) => x - y);
    const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
    for (const ws of sockets) ws.terminate();
    return {
      server: target.name, subscribers, seatSeconds, bytesPerConnection: (seated - baseline) / subscribers, posts,
      deliveriesPerSecond: delivered / elapsed, lost: expected - delivered, p50Ms: at(0.5), p99Ms: at(0.99),
    };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

export async function runRealtimeBench(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      subscribers: { type: 'string' }, duration: { type: 'string' }, web2py: { type: 'string' }, servers: { type: 'string' }, only: { type: 'string' },
      mode: { type: 'string' }, churners: { type: 'string' },
    },
  });
  const counts = (values.subscribers ?? '1000').split(',').map(Number);
  const durationS = Number(values.duration ?? 8);
  const web2py = values.web2py ?? '/work/w2p';
  const wanted = values.servers?.split(',') ?? ['ours', 'ours-nopresence', 'tornado', 'raw-ws'];
  if (values.mode === 'churn' || values.mode === 'redis') {
    const { runChurnBench } = await import('./realtime-churn.js');
    return runChurnBench(values.mode, targets(web2py).filter((t) => wanted.includes(t.name)), counts, durationS, Number(values.churners ?? 50));
  }
  if (values.mode !== undefined && values.mode !== 'deliver') throw new Error(`--mode: deliver, churn or redis, not ${values.mode}`);
  const rows: Figures[] = [];
  for (const subscribers of counts) {
    for (const target of targets(web2py).filter((t) => wanted.includes(t.name))) {
      process.stderr.write(`realtime: ${target.name}, ${subscribers} subscribers...\n`);
      rows.push(await measure(target, subscribers, durationS));
    }
  }
  process.stdout.write('| server | subscribers | seated in | memory per connection | POSTs | deliveries/s | lost | p50 latency | p99 latency |\n|---|---|---|---|---|---|---|---|---|\n');
  for (const r of rows) {
    process.stdout.write(`| ${r.server} | ${r.subscribers} | ${r.seatSeconds.toFixed(1)} s | ${(r.bytesPerConnection / 1024).toFixed(1)} KB | ${r.posts} `
      + `| ${Math.round(r.deliveriesPerSecond)} | ${r.lost} | ${r.p50Ms.toFixed(1)} ms | ${r.p99Ms.toFixed(1)} ms |\n`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runRealtimeBench(process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(`${String(error)}\n`);
    process.exitCode = 1;
  });
}
