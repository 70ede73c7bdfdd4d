/**
 * A download during which the file being sent shrinks: what a kept-alive client receives when a
 * log is rotated or an upload rewritten under the server's feet.
 */
import { truncateSync } from 'node:fs';
import { connect } from 'node:net';

export interface ShrunkDownload {
  /** Content-Length of the first answer (the file's size when it was opened). */
  contentLength: number;
  /** Bytes of the first answer's body received (everything after its head). */
  bodyBytes: number;
  /** Everything received, latin-1. */
  text: string;
  /** The server closed the connection (within the time allowed). */
  closed: boolean;
}

/**
 * Sends `requests` (several, pipelined, in one packet) to 127.0.0.1:`port`; when the first bytes
 * of the answer arrive, truncates `file` to `shrinkTo` bytes, and reads on until the server
 * closes or `timeoutMs` passes. The server cannot have sent more than loopback buffers hold by
 * then: `shrinkTo` must be well above that (tens of MB).
 */
export function downloadWhileShrinking(port: number, requests: string, file: string, shrinkTo: number, timeoutMs = 5_000): Promise<ShrunkDownload> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let isShrunk = false;
    socket.on('connect', () => socket.write(requests));
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (isShrunk) return;
      isShrunk = true;
      truncateSync(file, shrinkTo);
    });
    const finish = (closed: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      const bytes = Buffer.concat(chunks);
      const headEnd = bytes.indexOf('\r\n\r\n');
      const head = bytes.toString('latin1', 0, Math.max(0, headEnd));
      const contentLength = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? NaN);
      resolve({ contentLength, bodyBytes: headEnd < 0 ? 0 : bytes.length - headEnd - 4, text: bytes.toString('latin1'), closed });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.once('close', () => finish(true));
  });
}
