/** Byte-exact HTTP over real TCP: one-shot requests, connections a test drives step by step, and a client-side response splitter. */
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

/** A raw TCP connection a test drives step by step: write bytes when it likes, read what came, see the close. */
export class RawConnection {
  readonly socket: Socket;
  private chunks: Buffer[] = [];
  private waiters: (() => void)[] = [];
  closed = false;
  /** The server sent FIN (or reset): nothing more will come. */
  readonly whenClosed: Promise<void>;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (c: Buffer) => { this.chunks.push(c); this.wake(); });
    socket.on('error', () => {});
    this.whenClosed = new Promise((resolve) => {
      const done = (): void => { this.closed = true; this.wake(); resolve(); };
      socket.once('end', done);
      socket.once('close', done);
    });
  }

  static open(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => resolve(new RawConnection(socket)));
      socket.once('error', reject);
    });
  }

  write(bytes: string | Buffer): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(bytes);
  }

  /** Writes; resolves once the bytes left (false if the connection is gone): for pacing a body. */
  send(bytes: string | Buffer): Promise<boolean> {
    if (this.socket.destroyed || !this.socket.writable) return Promise.resolve(false);
    return new Promise((resolve) => this.socket.write(bytes, (error) => resolve(error == null)));
  }

  /** Everything received so far, as latin-1 text. */
  get received(): string {
    return this.text();
  }

  /** Waits until the answer so far matches (throws if the connection closes first, or on timeout). */
  async until(pattern: RegExp, timeoutMs = 10_000): Promise<RegExpExecArray> {
    let match: RegExpExecArray | null = null;
    const text = await this.readUntil((received) => (match = pattern.exec(received)) !== null, timeoutMs);
    if (match === null) throw new Error(`no ${pattern} in the answer (closed): ${JSON.stringify(text.slice(0, 500))}`);
    return match;
  }

  /** Everything received so far, as latin-1 text. */
  text(): string {
    return Buffer.concat(this.chunks).toString('latin1');
  }

  /** Waits until `done(text)` holds or the connection closes; fails after `timeoutMs`. */
  async readUntil(done: (text: string) => boolean, timeoutMs = 5_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!done(this.text())) {
      if (this.closed) break;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting; got ${JSON.stringify(this.text().slice(0, 300))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
    return this.text();
  }

  /** Waits for the server to close; false if it is still open after `timeoutMs`. */
  async closedWithin(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), timeoutMs); });
    const result = await Promise.race([this.whenClosed.then(() => true as const), timeout]);
    clearTimeout(timer);
    return result;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

export interface ParsedResponse {
  status: number;
  /** Lower-case names; a repeated field keeps every value. */
  headers: Map<string, string[]>;
  /** Bytes of the head, for byte-exact checks. */
  head: string;
  body: Buffer;
}

/**
 * Splits what a server sent on one connection into its responses, framed as a client would:
 * no body after HEAD, 1xx, 204 and 304; else Content-Length, chunked, or up to the close.
 * `methods` are the requests' methods, in order. Returns the responses and the bytes left over.
 */
export function parseResponses(bytes: Buffer, methods: readonly string[], isClosed = true): { responses: ParsedResponse[]; rest: Buffer } {
  const responses: ParsedResponse[] = [];
  let at = 0;
  for (const method of methods) {
    const headEnd = bytes.indexOf('\r\n\r\n', at, 'latin1');
    if (headEnd < 0) break;
    const head = bytes.toString('latin1', at, headEnd + 4);
    const lines = head.slice(0, -4).split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0]!)?.[1] ?? 'NaN');
    const headers = new Map<string, string[]>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()]);
    }
    let bodyStart = headEnd + 4;
    let body: Buffer;
    const length = headers.get('content-length')?.[0];
    if (method === 'HEAD' || status < 200 || status === 204 || status === 304) {
      body = Buffer.alloc(0);
    } else if (headers.get('transfer-encoding')?.[0]?.toLowerCase() === 'chunked') {
      const parts: Buffer[] = [];
      for (;;) {
        const lineEnd = bytes.indexOf('\r\n', bodyStart, 'latin1');
        if (lineEnd < 0) return { responses, rest: bytes.subarray(at) };
        const size = parseInt(bytes.toString('latin1', bodyStart, lineEnd), 16);
        bodyStart = lineEnd + 2;
        if (size === 0) {
          const trailerEnd = bytes.indexOf('\r\n', bodyStart, 'latin1');
          bodyStart = trailerEnd + 2;
          break;
        }
        parts.push(bytes.subarray(bodyStart, bodyStart + size));
        bodyStart += size + 2;
      }
      body = Buffer.concat(parts);
    } else if (length !== undefined) {
      if (bytes.length < bodyStart + Number(length)) break;
      body = bytes.subarray(bodyStart, bodyStart + Number(length));
      bodyStart += Number(length);
    } else {
      if (!isClosed) break;
      body = bytes.subarray(bodyStart);
      bodyStart = bytes.length;
    }
    responses.push({ status, headers, head, body });
    at = bodyStart;
  }
  return { responses, rest: bytes.subarray(at) };
}

/** Whether a TCP connect to 127.0.0.1:port is refused (nothing listens there). */
export function isRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => { socket.destroy(); resolve(false); });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}
