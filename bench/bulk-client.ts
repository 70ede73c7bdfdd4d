/**
 * @module bench/bulk-client
 * A separate process (run by bench/bulk.ts, so the runner's event loop stays free to sample
 * memory every 100 ms) that moves large bodies to or from 127.0.0.1:PORT at full speed: one
 * request per connection, all connections at once, each a fresh one (agent: false).
 *
 * - download, file: GET /download?bytes=N or /file?bytes=N; reads and discards, counting bytes.
 * - upload, upload-chunked: POST /upload from one reused 64 KiB buffer, with Content-Length or
 *   chunked (a 64 KiB chunk per write); the app answers the bytes it read, checked here.
 *
 * Every count is checked: a short body, a wrong status or a count the app did not confirm is
 * an error of that connection, never a figure. Prints one JSON line ({@link ClientResult}).
 *
 * Usage: node --import tsx bench/bulk-client.ts PORT TRANSFER BYTES_PER_CONN CONNS TIMEOUT_S
 */
import http from 'node:http';

export type Transfer = 'download' | 'file' | 'upload' | 'upload-chunked';

export interface ConnResult {
  asked: number;
  /** Bytes received (download) or sent and confirmed by the app (upload). */
  moved: number;
  /** Upload: bytes written to the socket (the app's count may be lower: `moved`). */
  sent?: number;
  status: number;
  error: string | null;
  /** Download of /file: the app's X-File-Wrapper header ("server", or "none" when the app read the file). */
  fileWrapper?: string;
  /** Upload: how the app says it got the body (Content-Length, read to the end, not read). */
  how?: string;
}

export interface ClientResult {
  /** From the first request sent to the last answer settled. */
  seconds: number;
  conns: ConnResult[];
}

const CHUNK = 64 * 1024;
const BLOCK = Buffer.alloc(CHUNK, 0x78);

function download(port: number, path: string, asked: number, r: ConnResult, done: () => void): http.ClientRequest {
  let settled = false;
  const settle = (error: string | null): void => {
    if (settled) return;
    settled = true;
    r.error = error;
    done();
  };
  const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
    r.status = res.statusCode ?? 0;
    const fw = res.headers['x-file-wrapper'];
    if (typeof fw === 'string') r.fileWrapper = fw;
    res.on('data', (c: Buffer) => {
      r.moved += c.length;
    });
    res.on('end', () => {
      if (r.status !== 200) settle(`HTTP ${r.status}`);
      else settle(r.moved === asked ? null : 'short body');
    });
    res.on('error', (e) => settle(e.message));
  });
  req.on('error', (e) => settle(e.message));
  req.on('close', () => settle('short body: the connection closed'));
  return req;
}

function upload(port: number, chunked: boolean, asked: number, r: ConnResult, done: () => void): http.ClientRequest {
  let settled = false;
  let sent = 0;
  const settle = (error: string | null): void => {
    if (settled) return;
    settled = true;
    r.error = error;
    r.sent = sent;
    done();
  };
  const headers: http.OutgoingHttpHeaders = chunked ? { 'Transfer-Encoding': 'chunked' } : { 'Content-Length': String(asked) };
  const req = http.request({ host: '127.0.0.1', port, path: '/upload', method: 'POST', agent: false, headers }, (res) => {
    r.status = res.statusCode ?? 0;
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => {
      body += c;
    });
    res.on('end', () => {
      if (r.status !== 200) return settle(`HTTP ${r.status}`);
      let answer: { bytes?: unknown; how?: unknown };
      try {
        answer = JSON.parse(body) as typeof answer;
      } catch {
        return settle(`unreadable answer ${JSON.stringify(body.slice(0, 80))}`);
      }
      if (typeof answer.how === 'string') r.how = answer.how;
      r.moved = typeof answer.bytes === 'number' ? answer.bytes : 0;
      settle(r.moved === asked ? null : `the app read ${r.moved} bytes`);
      // answered before the whole body was sent (it did not read it): stop sending
      if (sent < asked) req.destroy();
    });
    res.on('error', (e) => settle(e.message));
  });
  req.on('error', (e) => settle(e.message));
  req.on('close', () => settle('the connection closed, no answer'));
  const pump = (): void => {
    while (sent < asked) {
      const piece = asked - sent >= CHUNK ? BLOCK : BLOCK.subarray(0, asked - sent);
      sent += piece.length;
      if (!req.write(piece)) {
        req.once('drain', pump);
        return;
      }
    }
    req.end();
  };
  pump();
  return req;
}

function run(port: number, transfer: Transfer, perConn: number, conns: number, timeoutS: number): Promise<ClientResult> {
  return new Promise((resolve) => {
    const results: ConnResult[] = [];
    const reqs: http.ClientRequest[] = [];
    let left = conns;
    const t0 = process.hrtime.bigint();
    const finish = (): void => {
      clearTimeout(timer);
      resolve({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, conns: results });
    };
    const timer = setTimeout(() => {
      for (const req of reqs) req.destroy(new Error(`timeout after ${timeoutS} s`));
    }, timeoutS * 1000);
    const done = (): void => {
      if (--left === 0) finish();
    };
    for (let i = 0; i < conns; i++) {
      const r: ConnResult = { asked: perConn, moved: 0, status: 0, error: null };
      results.push(r);
      reqs.push(
        transfer === 'upload' || transfer === 'upload-chunked'
          ? upload(port, transfer === 'upload-chunked', perConn, r, done)
          : download(port, `/${transfer}?bytes=${perConn}`, perConn, r, done),
      );
    }
  });
}

const [portArg, transferArg, bytesArg, connsArg, timeoutArg] = process.argv.slice(2);
const transfers: Transfer[] = ['download', 'file', 'upload', 'upload-chunked'];
if (!transfers.includes(transferArg as Transfer)) {
  process.stderr.write(`bulk-client: unknown transfer ${transferArg}\n`);
  process.exit(2);
}
const result = await run(Number(portArg), transferArg as Transfer, Number(bytesArg), Number(connsArg), Number(timeoutArg));
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
