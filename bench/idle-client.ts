/**
 * @module bench/idle-client
 * A separate process (run by bench/idle.ts through `bash -c 'ulimit -n …; exec node …'`, as
 * thousands of sockets need a raised fd limit) that opens COUNT keep-alive connections to
 * 127.0.0.1:PORT, sends one GET on each and then keeps them open and silent.
 *
 * Protocol on stdout, one line each: `READY {json}` once every connect attempt has settled
 * (or after SETTLE_S), `STATUS {json}` on the stdin command "status", `DONE {json}` on "stop"
 * (or stdin closing, or MAX_S elapsed: it never outlives the bench).
 *
 * Usage: node --import tsx bench/idle-client.ts PORT COUNT PATH SETTLE_S MAX_S
 */
import net from 'node:net';
import { createInterface } from 'node:readline';

const [portArg, countArg, pathArg, settleArg, maxArg] = process.argv.slice(2);
const port = Number(portArg);
const count = Number(countArg);
const path = pathArg ?? '/';
const settleS = Number(settleArg ?? 20);
const maxS = Number(maxArg ?? 120);
/** Connects started per 20 ms tick: a burst of 5000 SYNs would overflow the listen backlog. */
const BATCH = 250;
const REQUEST = `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`;

const c = { attempted: 0, connected: 0, answered: 0, open: 0, errors: 0, closedByServer: 0 };
const sockets: net.Socket[] = [];
let readyPrinted = false;

function openOne(): void {
  c.attempted++;
  const s = net.connect(port, '127.0.0.1');
  let answered = false;
  let connected = false;
  s.on('connect', () => {
    connected = true;
    c.connected++;
    c.open++;
    s.write(REQUEST);
  });
  s.on('data', () => {
    if (!answered) {
      answered = true;
      c.answered++;
    }
  });
  s.on('end', () => c.closedByServer++);
  s.on('error', () => c.errors++);
  s.on('close', () => {
    if (connected) c.open--;
  });
  sockets.push(s);
}

function report(tag: string): void {
  process.stdout.write(`${tag} ${JSON.stringify(c)}\n`);
}

function ready(): void {
  if (!readyPrinted) {
    readyPrinted = true;
    report('READY');
  }
}

function stop(): void {
  for (const s of sockets) s.destroy();
  report('DONE');
  process.exit(0);
}

const opener = setInterval(() => {
  for (let i = 0; i < BATCH && c.attempted < count; i++) openOne();
  if (c.attempted >= count) clearInterval(opener);
}, 20);
// settled: every attempt connected or failed, and every connected one answered or closed
const poll = setInterval(() => {
  const settled = c.attempted >= count && c.connected + c.errors >= count && c.answered + c.closedByServer >= c.connected;
  if (settled) {
    clearInterval(poll);
    ready();
  }
}, 50);
setTimeout(ready, settleS * 1000).unref();
setTimeout(stop, maxS * 1000).unref();
const rl = createInterface({ input: process.stdin });
rl.on('close', stop); // the bench went away: go too
rl.on('line', (line) => {
  if (line.trim() === 'status') report('STATUS');
  if (line.trim() === 'stop') stop();
});
