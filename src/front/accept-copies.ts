/**
 * @module `--accept-batch`: more than one accept per event-loop turn.
 *
 * Why: libuv (1.45 and newer, so Node.js 20) accepts one connection each time epoll reports a
 * listening socket, that is once per event-loop turn (libuv pull request 3696: "don't accept()
 * connections in a loop"). Idle, a turn is microseconds and nobody notices. Under load a turn
 * serves hundreds of ready connections and takes milliseconds, so connects arrive faster than
 * one per turn: a burst (a client opening 1,000 keep-alive connections, a proxy reconnecting,
 * a load without keep-alive) waits in the kernel's accept queue for seconds, and a newcomer
 * waits behind it while the connections already open are served. Measured with wrk -c1000 on
 * two cores: 500 connections still queued a second and a half into the load, and raw Node.js
 * (backlog 511) dropped handshakes outright.
 *
 * How: epoll reports every descriptor of a ready socket, and each report is one accept. Node.js
 * 20 has neither `SO_REUSEPORT` nor `dup()`, but a descriptor sent over an IPC channel arrives
 * as a new descriptor of the same socket. So a short-lived helper process receives each
 * listening socket and sends it back `batch - 1` times; the copies listen beside the original,
 * and each hands the connections it accepts to the original server (its `connection` event),
 * so the connection limit, TLS, HTTP/2 and every timeout are the same whichever copy accepted.
 * When the queue holds fewer connections than copies, the extra reports cost one `accept()`
 * that finds nothing (EAGAIN), a microsecond each.
 *
 * The copies must be closed with the original (`closeCopies`), or a stopping server would keep
 * accepting through them.
 */
import { spawn } from 'node:child_process';
import { Server as NetServer, type Socket } from 'node:net';

/**
 * The options a net.Server gives every socket it accepts (Node 20 keeps them as own properties).
 * A copy must accept exactly as the original would: http.Server asks for allowHalfOpen (net then
 * leaves a client's FIN to http's own handling instead of ending the socket itself) and noDelay
 * (no Nagle delay on answers); a bare net.Server has neither.
 */
const SOCKET_OPTIONS = ['allowHalfOpen', 'pauseOnConnect', 'noDelay', 'keepAlive', 'keepAliveInitialDelay', 'highWaterMark'] as const;

/** How long the helper may take to hand the copies back before we go on with one descriptor each. */
const HELPER_TIMEOUT_MS = 10_000;

/**
 * The helper: every listening socket it receives goes straight back, then its own copy is
 * closed. It exits when we disconnect the channel. Run as `node -e`, so nothing is loaded
 * besides Node itself.
 */
const HELPER_SOURCE = "process.on('message', (m, server) => { process.send(m, server, () => server.close()); });";

/**
 * Adds `batch - 1` copies of each listening server's socket. Resolves with the copies of each
 * server, in order; with none at all (and `problem` set) when the helper could not be run, in
 * which case the servers keep working with one accept per turn.
 */
export async function addAcceptCopies(
  servers: readonly NetServer[],
  batch: number,
  backlog: number,
): Promise<{ copies: NetServer[][]; problem: string | null }> {
  const copies: NetServer[][] = servers.map(() => []);
  const wanted = batch - 1;
  if (wanted <= 0 || servers.length === 0) return { copies, problem: null };
  // execArgv: [] so the helper does not inherit the front's own flags (--import tsx in tests).
  const helper = spawn(process.execPath, ['-e', HELPER_SOURCE], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'json' });
  let stderr = '';
  helper.stderr?.on('data', (chunk: Buffer) => { if (stderr.length < 2000) stderr += chunk.toString(); });
  try {
    await new Promise<void>((resolve, reject) => {
      let missing = wanted * servers.length;
      const timer = setTimeout(() => reject(new Error(`no answer within ${HELPER_TIMEOUT_MS / 1000} s`)), HELPER_TIMEOUT_MS);
      helper.once('error', (error) => { clearTimeout(timer); reject(error); });
      helper.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the helper exited (${signal ?? `code ${code}`})${stderr === '' ? '' : `: ${stderr.trim()}`}`));
      });
      helper.on('message', (message: unknown, copy: unknown) => {
        const index = typeof message === 'number' ? message : -1;
        const original = servers[index];
        if (original === undefined || copy === undefined) return;
        // Node re-listens on a socket it receives, with its default backlog (511), which would
        // shrink the accept queue of every descriptor (they share one socket). Our own server
        // takes the descriptor over and listens again with ours.
        const server = new NetServer();
        const options = server as unknown as Record<string, unknown>;
        for (const key of SOCKET_OPTIONS) options[key] = (original as unknown as Record<string, unknown>)[key];
        server.listen(copy as NetServer, backlog);
        server.on('connection', (socket: Socket) => original.emit('connection', socket));
        // An accept error (EMFILE) on a copy is what the original would report: it logs it.
        server.on('error', (error: Error) => original.emit('error', error));
        copies[index]!.push(server);
        missing -= 1;
        if (missing === 0) {
          clearTimeout(timer);
          resolve();
        }
      });
      for (const [index, server] of servers.entries()) {
        for (let n = 0; n < wanted; n++) helper.send(index, server);
      }
    });
    return { copies, problem: null };
  } catch (error: unknown) {
    closeCopies(copies.flat());
    return { copies: servers.map(() => []), problem: error instanceof Error ? error.message : String(error) };
  } finally {
    helper.removeAllListeners('exit');
    if (helper.connected) helper.disconnect();
    if (helper.exitCode === null && helper.signalCode === null) helper.kill();
  }
}

/** Stops the copies accepting (the connections they accepted belong to the original server). */
export function closeCopies(copies: readonly NetServer[]): void {
  for (const copy of copies) if (copy.listening) copy.close();
}
