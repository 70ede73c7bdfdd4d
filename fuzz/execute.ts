/** Runs one case on one connection: connect, write each piece, maybe half-close or stall, read until the server closes or goes quiet. */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Case } from './case.js';
import type { Ports } from './target.js';

export interface Outcome {
  /** What the server sent (decrypted for TLS transports). */
  received: Buffer;
  closedByServer: boolean;
  /** A connect or handshake error (not a failure by itself). */
  error?: string;
  /** The client's port: how a socket the server holds is traced back to its case. */
  localPort?: number;
}

export interface ExecuteOptions {
  /** Quiet time after the last byte either way before the connection is dropped. */
  quietMs: number;
  /** The most a case may take. */
  capMs: number;
  /** Called while a stalling case holds its connection: the harness checks others are answered. */
  duringStall?: () => Promise<void>;
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

export function execute(c: Case, ports: Ports, options: ExecuteOptions): Promise<Outcome> {
  return new Promise((resolve) => {
    const port = c.transport === 'plain' ? ports.plain : ports.tls;
    let socket: Socket;
    if (c.transport === 'tls-h1' || c.transport === 'tls-h2') {
      socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: [c.transport === 'tls-h2' ? 'h2' : 'http/1.1'] });
    } else {
      socket = netConnect({ host: '127.0.0.1', port });
    }
    const chunks: Buffer[] = [];
    let closedByServer = false;
    let error: string | undefined;
    let last = Date.now();
    let finished = false;
    let localPort: number | undefined;
    let quietTimer: NodeJS.Timeout | undefined;
    const started = Date.now();
    const finish = (): void => {
      if (finished) return;
      finished = true;
      clearTimeout(quietTimer);
      clearTimeout(capTimer);
      socket.destroy();
      resolve({ received: Buffer.concat(chunks), closedByServer, ...(error !== undefined ? { error } : {}), ...(localPort !== undefined ? { localPort } : {}) });
    };
    const capTimer = setTimeout(finish, options.capMs);
    const armQuiet = (): void => {
      clearTimeout(quietTimer);
      quietTimer = setTimeout(() => {
        const idle = Date.now() - last;
        if (idle >= options.quietMs || Date.now() - started >= options.capMs) finish();
        else armQuiet();
      }, options.quietMs);
    };
    socket.on('data', (d: Buffer) => { chunks.push(d); last = Date.now(); });
    socket.on('end', () => { closedByServer = true; });
    socket.on('error', (e: NodeJS.ErrnoException) => { error ??= e.code ?? e.message; });
    socket.on('close', finish);
    const ready = c.transport === 'tls-h1' || c.transport === 'tls-h2' ? 'secureConnect' : 'connect';
    socket.once('connect', () => { localPort = socket.localPort; });
    socket.once(ready, () => {
      void (async () => {
        for (const piece of c.writes) {
          if (socket.destroyed || !socket.writable) break;
          socket.write(piece);
          last = Date.now();
          if (c.writes.length > 1) await turn();
        }
        if (c.stallMs !== undefined) {
          const stall = new Promise((r) => setTimeout(r, c.stallMs));
          await Promise.all([stall, options.duringStall?.()]);
          last = Date.now();
        }
        if (c.end === true && !socket.destroyed && socket.writable) socket.end();
        last = Date.now();
        armQuiet();
      })();
    });
  });
}

/** Statuses of the HTTP/1 answers in `received` (status lines at the start or after a CRLF). */
export function http1Statuses(received: Buffer): number[] {
  const text = received.toString('latin1');
  return [...text.matchAll(/(?:^|\r\n)HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]));
}
