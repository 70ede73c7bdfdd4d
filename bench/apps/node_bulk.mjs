// Raw Node.js http serving bulk.py's routes: the front-end limit for large bodies.
// GET /download?bytes=N (64 KiB writes, minding backpressure), GET /file?bytes=N (the same
// file as bulk.py, BENCH_BULK_DIR/w2n-bench-bulk-N.bin, piped from disk), POST /upload
// (counted as it comes, Content-Length or chunked). With --spool, a chunked upload (no
// Content-Length) is written to a temp file first and counted from it: what a server must do to
// give web2py a chunked body (web2py reads CONTENT_LENGTH bytes), so the floor of ours' chunked row.
// Usage: node node_bulk.mjs PORT [--spool]
import { createReadStream, createWriteStream, existsSync, renameSync, statSync, unlink, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const port = Number(process.argv[2]);
const spool = process.argv.includes('--spool');
let spooled = 0;
const CHUNK = 64 * 1024;
const BLOCK = Buffer.alloc(CHUNK, 0x78);

function bulkFile(n) {
  const path = join(process.env.BENCH_BULK_DIR || tmpdir(), `w2n-bench-bulk-${n}.bin`);
  if (!existsSync(path) || statSync(path).size !== n) {
    const tmp = `${path}.${process.pid}`;
    writeFileSync(tmp, Buffer.alloc(n, 0x78));
    renameSync(tmp, path);
  }
  return path;
}

function made(res, n) {
  let sent = 0;
  const pump = () => {
    while (sent < n) {
      const piece = n - sent >= CHUNK ? BLOCK : BLOCK.subarray(0, n - sent);
      sent += piece.length;
      if (!res.write(piece)) return void res.once('drain', pump);
    }
    res.end();
  };
  pump();
}

http
  .createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    const n = Number(url.searchParams.get('bytes'));
    if (url.pathname === '/upload' && req.method === 'POST' && spool && req.headers['content-length'] === undefined) {
      const path = join(process.env.BENCH_BULK_DIR || tmpdir(), `w2n-bench-spool-${process.pid}-${spooled++}`);
      const file = createWriteStream(path, { highWaterMark: 1024 * 1024 });
      req.pipe(file).on('finish', () => {
        const body = JSON.stringify({ bytes: statSync(path).size, how: 'spooled to a file, then counted' });
        unlink(path, () => {});
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
        res.end(body);
      });
      return;
    }
    if (url.pathname === '/upload' && req.method === 'POST') {
      let got = 0;
      req.on('data', (c) => (got += c.length));
      req.on('end', () => {
        const body = JSON.stringify({ bytes: got, how: 'counted as it came' });
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
        res.end(body);
      });
      return;
    }
    if ((url.pathname === '/download' || url.pathname === '/file') && Number.isInteger(n) && n >= 0) {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': n });
      if (url.pathname === '/download') return made(res, n);
      return void createReadStream(bulkFile(n), { highWaterMark: CHUNK }).pipe(res);
    }
    const body = url.pathname === '/' ? 'bulk app\n' : '';
    res.writeHead(body ? 200 : 404, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
    res.end(body);
  })
  .listen(port, '127.0.0.1');
