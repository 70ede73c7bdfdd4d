/** Sends raw bytes on a fresh TCP connection and returns everything the server answered until it closed. */
import { connect, type Socket } from 'node:net';

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

/** A raw connection driven step by step: write bytes, wait until what was answered so far matches. */
export class RawConnection {
  private text = '';
  private isClosed = false;
  private readonly waiters = new Set<() => void>();
  readonly closed: Promise<void>;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.text += chunk.toString('latin1');
      this.wake();
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.on('close', () => {
      this.isClosed = true;
      this.wake();
      resolve();
    }));
  }

  static open(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => resolve(new RawConnection(socket)));
      socket.once('error', reject);
    });
  }

  /** Everything the server sent so far (latin-1). */
  get received(): string {
    return this.text;
  }

  /** Writes; resolves once the bytes left (false if the connection is gone). */
  write(bytes: string | Buffer): Promise<boolean> {
    if (this.socket.destroyed || !this.socket.writable) return Promise.resolve(false);
    return new Promise((resolve) => this.socket.write(bytes, (error) => resolve(error == null)));
  }

  /** Waits until the answer so far matches (or the connection closed, or the timeout: then throws). */
  async until(pattern: RegExp, timeoutMs = 10_000): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = pattern.exec(this.text);
      if (match !== null) return match;
      if (this.isClosed || Date.now() > deadline) {
        throw new Error(`no ${pattern} in the answer (${this.isClosed ? 'closed' : 'timed out'}): ${JSON.stringify(this.text.slice(0, 500))}`);
      }
      await new Promise<void>((resolve) => {
        const wake = (): void => { clearTimeout(timer); this.waiters.delete(wake); resolve(); };
        const timer = setTimeout(wake, Math.max(0, deadline - Date.now()) + 1);
        this.waiters.add(wake);
      });
    }
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    for (const wake of [...this.waiters]) wake();
  }
}
