/** Sends raw bytes on a fresh TCP connection and returns everything the server answered until it closed. */
import { connect } from 'node:net';

export function rawRequest(port: number, bytes: string | Buffer, options: { timeoutMs?: number; endAfterWrite?: boolean } = {}): Promise<{ response: string; closedByServer: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let closedByServer = false;
    const timer = setTimeout(() => { socket.destroy(); }, options.timeoutMs ?? 5_000);
    socket.on('connect', () => {
      socket.write(bytes);
      if (options.endAfterWrite === true) socket.end();
    });
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => { closedByServer = true; });
    socket.on('error', (e: NodeJS.ErrnoException) => { if (e.code !== 'ECONNRESET') reject(e); });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ response: Buffer.concat(chunks).toString('latin1'), closedByServer });
    });
  });
}
