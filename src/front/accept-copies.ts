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
 * How: epoll reports every descriptor of a ready socket, and each report is one accept. The
 * primary (src/primary/) holds each listening socket and passes it to every front process
 * `batch` times, as inherited descriptors (a child's stdio may name the same descriptor at
 * several positions; each becomes a descriptor of its own in the child). The first one is the
 * listener's own server; the others are copies that listen beside it and hand every connection
 * they accept to it (its `connection` event), so the connection limit, TLS, HTTP/2 and every
 * timeout are the same whichever descriptor accepted. When the queue holds fewer connections
 * than descriptors, the extra reports cost one `accept()` that finds nothing (EAGAIN), a
 * microsecond each.
 *
 * The copies must be closed with the original (`closeCopies`), or a stopping front would keep
 * accepting through them.
 */
import { Server as NetServer, type Socket } from 'node:net';

/**
 * The options a net.Server gives every socket it accepts (Node 20 keeps them as own properties).
 * A copy must accept exactly as the original would: http.Server asks for allowHalfOpen (net then
 * leaves a client's FIN to http's own handling instead of ending the socket itself) and noDelay
 * (no Nagle delay on answers); a bare net.Server has neither.
 */
const SOCKET_OPTIONS = ['allowHalfOpen', 'pauseOnConnect', 'noDelay', 'keepAlive', 'keepAliveInitialDelay', 'highWaterMark'] as const;

/** Copies `from`'s per-socket options onto `to` (both net.Servers; the keys are own data properties). */
function copySocketOptions(from: NetServer, to: NetServer): void {
  for (const key of SOCKET_OPTIONS) {
    const value: unknown = Reflect.get(from, key);
    if (value !== undefined) Reflect.set(to, key, value);
  }
}

/**
 * Listens on each inherited descriptor in `fds` with a copy of `original` that hands what it
 * accepts to `original`. Returns the copies (close them with closeCopies).
 */
export function listenCopies(original: NetServer, fds: readonly number[], backlog: number): NetServer[] {
  return fds.map((fd) => {
    const copy = new NetServer();
    copySocketOptions(original, copy);
    copy.on('connection', (socket: Socket) => original.emit('connection', socket));
    // An accept error (EMFILE) on a copy is what the original would report: it logs it.
    copy.on('error', (error: Error) => original.emit('error', error));
    // The backlog goes as an argument: Node reads `backlog` from the object form only for addresses.
    copy.listen({ fd }, backlog);
    return copy;
  });
}

/** Stops the copies accepting (the connections they accepted belong to the original server). */
export function closeCopies(copies: readonly NetServer[]): void {
  for (const copy of copies) if (copy.listening) copy.close();
}
