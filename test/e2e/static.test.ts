/**
 * @module Static files end to end: createStaticHandler on a real node:http server (port 0, real
 * sockets) over a temp copy of the web2py fixture, with precompressed siblings, a dotfile and
 * symlinks out of the static folder made in the copy. Independent of where the front wires it.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { brotliCompressSync, gunzipSync, gzipSync } from 'node:zlib';

import { decodePath } from '../../src/front/environ.js';
import { createStaticHandler } from '../../src/front/static/serve.js';
import { FileCache } from '../../src/front/static/file-cache.js';
import { createLogger } from '../../src/observability/log.js';
import { fixtures } from '../helpers/server.js';
import { downloadWhileShrinking } from '../helpers/shrinking-file.js';

const PASSED = 599;
const SECRET = 'TOP SECRET, outside the static folder';

let scratch: string;
let staticDir: string;
let server: Server;
let port: number;
let css: Buffer;

interface Answer { status: number; reason: string; headers: IncomingHttpHeaders; body: Buffer }

function get(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({
        status: res.statusCode ?? 0, reason: res.statusMessage ?? '', headers: res.headers, body: Buffer.concat(chunks),
      }));
    });
    req.on('error', reject);
    req.end();
  });
}

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'w2n-static-'));
  const web2py = join(scratch, 'web2py');
  cpSync(join(fixtures, 'web2py'), web2py, { recursive: true });
  staticDir = join(web2py, 'applications', 'welcome', 'static');
  css = readFileSync(join(staticDir, 'css', 'web2py.css'));
  const cssTime = statSync(join(staticDir, 'css', 'web2py.css')).mtime;
  writeFileSync(join(staticDir, 'css', 'web2py.css.gz'), gzipSync(css));
  writeFileSync(join(staticDir, 'css', 'web2py.css.br'), brotliCompressSync(css));
  // A stale sibling (older than its file) is never chosen, as in streamer.py.
  writeFileSync(join(staticDir, 'js', 'app.js.gz'), gzipSync(Buffer.from('stale')));
  utimesSync(join(staticDir, 'js', 'app.js.gz'), new Date(0), new Date(0));
  utimesSync(join(staticDir, 'css', 'web2py.css'), cssTime, cssTime);
  // A Date holds milliseconds: set back through utimes, cssTime can land a few hundred µs after
  // the siblings just written, which would make them stale. Make them plainly newer.
  const siblingTime = new Date(cssTime.getTime() + 1000);
  for (const suffix of ['.gz', '.br']) utimesSync(join(staticDir, 'css', `web2py.css${suffix}`), siblingTime, siblingTime);
  writeFileSync(join(staticDir, 'my_file.txt'), 'underscored\n');
  writeFileSync(join(staticDir, '.htaccess'), SECRET);
  writeFileSync(join(scratch, 'secret.txt'), SECRET);
  writeFileSync(join(web2py, 'applications', 'welcome', 'private.txt'), SECRET);
  mkdirSync(join(scratch, 'outside'));
  writeFileSync(join(scratch, 'outside', 'x.txt'), SECRET);
  symlinkSync(join(scratch, 'secret.txt'), join(staticDir, 'escape.txt'));
  symlinkSync(join(scratch, 'outside'), join(staticDir, 'outdir'));
  symlinkSync(join(staticDir, 'js', 'app.js'), join(staticDir, 'inside-link.js'));

  const handle = createStaticHandler({
    web2pyFolder: web2py, log: createLogger({ level: 'silent', format: 'json' }), cache: new FileCache({ maxBytes: 0, maxFileBytes: 0 }),
  });
  server = createServer((req, res) => {
    const target = req.url ?? '/';
    const question = target.indexOf('?');
    if (!handle(req, res, decodePath(question < 0 ? target : target.slice(0, question)))) {
      res.statusCode = PASSED;
      res.end('passed to Python');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(scratch, { recursive: true, force: true });
});

describe('200 and web2py headers', () => {
  test('unversioned: Cache-Control private, Pragma cache, validators, type', async () => {
    const answer = await get('/welcome/static/css/web2py.css');
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, css);
    assert.equal(answer.headers['cache-control'], 'private');
    assert.equal(answer.headers.pragma, 'cache');
    assert.equal(answer.headers.expires, undefined);
    assert.equal(answer.headers['content-type'], 'text/css; charset=utf-8');
    assert.equal(answer.headers['content-length'], String(css.length));
    assert.equal(answer.headers['accept-ranges'], 'bytes');
    assert.equal(answer.headers['x-powered-by'], 'web2py');
    assert.ok(answer.headers.etag);
    assert.ok(answer.headers['last-modified']);
    // web2py.css has .gz and .br siblings here: the answer varies even for a client that accepts neither.
    assert.equal(answer.headers.vary, 'Accept-Encoding');
  });

  test('versioned: far-future Cache-Control and Expires, version stripped', async () => {
    const answer = await get('/welcome/static/_2.1.1/css/web2py.css');
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, css);
    assert.equal(answer.headers['cache-control'], 'max-age=315360000');
    assert.equal(answer.headers.expires, 'Thu, 31 Dec 2037 23:59:59 GMT');
    assert.equal(answer.headers.pragma, 'cache');
  });

  test('?attachment → Content-Disposition: attachment', async () => {
    const answer = await get('/welcome/static/js/app.js?attachment=1');
    assert.equal(answer.status, 200);
    assert.equal(answer.headers['content-disposition'], 'attachment');
    assert.match(String(answer.headers['content-type']), /javascript/);
  });

  test('spaces map to underscores, trailing slash dropped, symlink inside the folder followed', async () => {
    assert.equal((await get('/welcome/static/my%20file.txt')).body.toString(), 'underscored\n');
    assert.equal((await get('/welcome/static/my_file.txt/')).body.toString(), 'underscored\n');
    const linked = await get('/welcome/static/inside-link.js');
    assert.equal(linked.status, 200);
    assert.deepEqual(linked.body, readFileSync(join(staticDir, 'js', 'app.js')));
  });

  test('HEAD: headers and length, no body', async () => {
    const answer = await get('/welcome/static/css/web2py.css', {}, 'HEAD');
    assert.equal(answer.status, 200);
    assert.equal(answer.headers['content-length'], String(css.length));
    assert.equal(answer.body.length, 0);
  });
});

describe('conditional requests', () => {
  test('304 on If-None-Match and on If-Modified-Since, caching headers kept', async () => {
    const first = await get('/welcome/static/_1.0.0/css/web2py.css');
    const byEtag = await get('/welcome/static/_1.0.0/css/web2py.css', { 'If-None-Match': String(first.headers.etag) });
    assert.equal(byEtag.status, 304);
    assert.equal(byEtag.body.length, 0);
    assert.equal(byEtag.headers['cache-control'], 'max-age=315360000');
    const byDate = await get('/welcome/static/css/web2py.css', { 'If-Modified-Since': String(first.headers['last-modified']) });
    assert.equal(byDate.status, 304);
    const changed = await get('/welcome/static/css/web2py.css', { 'If-None-Match': '"other"' });
    assert.equal(changed.status, 200);
  });
});

describe('ranges', () => {
  test('206 single range', async () => {
    const answer = await get('/welcome/static/css/web2py.css', { Range: 'bytes=0-9' });
    assert.equal(answer.status, 206);
    assert.equal(answer.headers['content-range'], `bytes 0-9/${css.length}`);
    assert.deepEqual(answer.body, css.subarray(0, 10));
    const suffix = await get('/welcome/static/css/web2py.css', { Range: 'bytes=-5' });
    assert.deepEqual(suffix.body, css.subarray(css.length - 5));
  });

  test('206 multipart/byteranges for several ranges', async () => {
    const answer = await get('/welcome/static/css/web2py.css', { Range: 'bytes=0-4, 20-29' });
    assert.equal(answer.status, 206);
    const boundary = /^multipart\/byteranges; boundary=(\S+)$/.exec(String(answer.headers['content-type']))?.[1];
    assert.ok(boundary);
    assert.equal(Number(answer.headers['content-length']), answer.body.length);
    const text = answer.body.toString('latin1');
    const parts = text.split(`--${boundary}`);
    assert.equal(parts.length, 4); // '', part 1, part 2, '--\r\n'
    assert.ok(parts[1]!.includes(`Content-Range: bytes 0-4/${css.length}\r\n`));
    assert.ok(parts[1]!.includes('Content-Type: text/css; charset=utf-8\r\n'));
    assert.ok(parts[1]!.endsWith(`\r\n\r\n${css.subarray(0, 5).toString('latin1')}\r\n`));
    assert.ok(parts[2]!.endsWith(`\r\n\r\n${css.subarray(20, 30).toString('latin1')}\r\n`));
    assert.equal(parts[3], '--\r\n');
  });

  test('416 when no range is satisfiable', async () => {
    const answer = await get('/welcome/static/css/web2py.css', { Range: `bytes=${css.length + 10}-` });
    assert.equal(answer.status, 416);
    assert.equal(answer.headers['content-range'], `bytes */${css.length}`);
  });
});

describe('precompressed siblings', () => {
  test('.gz chosen with Accept-Encoding: gzip, Vary present, type of the original', async () => {
    const answer = await get('/welcome/static/css/web2py.css', { 'Accept-Encoding': 'gzip' });
    assert.equal(answer.status, 200);
    assert.equal(answer.headers['content-encoding'], 'gzip');
    assert.equal(answer.headers.vary, 'Accept-Encoding');
    assert.equal(answer.headers['content-type'], 'text/css; charset=utf-8');
    assert.deepEqual(gunzipSync(answer.body), css);
  });

  test('.br preferred when accepted; identity without Accept-Encoding; stale sibling ignored', async () => {
    assert.equal((await get('/welcome/static/css/web2py.css', { 'Accept-Encoding': 'gzip, deflate, br' })).headers['content-encoding'], 'br');
    assert.equal((await get('/welcome/static/css/web2py.css', { 'Accept-Encoding': 'br;q=0, gzip' })).headers['content-encoding'], 'gzip');
    const stale = await get('/welcome/static/js/app.js', { 'Accept-Encoding': 'gzip' });
    assert.equal(stale.headers['content-encoding'], undefined);
    assert.deepEqual(stale.body, readFileSync(join(staticDir, 'js', 'app.js')));
  });
});

describe("web2py's answers and pass-through", () => {
  test('missing file: 404 as web2py writes it', async () => {
    const answer = await get('/welcome/static/css/missing.css');
    assert.equal(answer.status, 404);
    assert.equal(answer.reason, 'NOT FOUND');
    assert.equal(answer.body.toString(), '404 NOT FOUND');
    assert.equal(answer.headers.web2py_error, 'invalid file');
    assert.equal(answer.headers['content-type'], 'text/html; charset=UTF-8');
  });

  test('a folder: 403 "file is a directory", as streamer.py', async () => {
    const answer = await get('/welcome/static/css');
    assert.equal(answer.status, 403);
    assert.equal(answer.headers.web2py_error, 'file is a directory');
  });

  test('unknown app, non-static URLs, other methods: passed to Python', async () => {
    assert.equal((await get('/nope/static/x.css')).status, PASSED);
    assert.equal((await get('/welcome/default/index')).status, PASSED);
    assert.equal((await get('/welcome/static/css/web2py.css', {}, 'POST')).status, PASSED);
  });
});

describe('never outside applications/<app>/static', () => {
  const attempts = [
    '/welcome/static/../private.txt',
    '/welcome/static/css/../../private.txt',
    '/welcome/static/%2e%2e/private.txt',
    '/welcome/static/%2E%2E/%2E%2E/%2E%2E/secret.txt',
    '/welcome/static/%252e%252e/private.txt',
    '/welcome/static/%25252e%25252e/private.txt',
    '/welcome/static/css%2f..%2f..%2fprivate.txt',
    '/welcome/static/css%252f..%252f..%252fprivate.txt',
    '/welcome/static/css%5c..%5c..%5cprivate.txt',
    '/welcome/static/css%255c..%255c..%255cprivate.txt',
    '/welcome/static/css\\..\\..\\private.txt',
    '/welcome/static/..%5cprivate.txt',
    '/welcome/static/.%2e/private.txt',
    '/welcome/static/%2e./private.txt',
    '/welcome/static/private.txt%00.css',
    '/welcome/static/private.txt%2500.css',
    '/welcome/static/.htaccess',
    '/welcome/static/%2ehtaccess',
    '/welcome/static/escape.txt',
    '/welcome/static/outdir/x.txt',
    '/welcome/static/_1.2.3/../../private.txt',
  ];
  for (const path of attempts) {
    test(path, async () => {
      const answer = await get(path);
      assert.ok([400, 404, PASSED].includes(answer.status), `status ${answer.status}`);
      assert.ok(!answer.body.toString('latin1').includes('SECRET'));
    });
  }

  test('traversal answers are web2py\'s 400 "invalid request"', async () => {
    const answer = await get('/welcome/static/%252e%252e/private.txt');
    assert.equal(answer.status, 400);
    assert.equal(answer.body.toString(), '<html><body><h1>invalid request</h1></body></html>');
    assert.equal(answer.headers.web2py_error, 'invalid path');
  });

  test('a symlink out of the folder is refused with 404', async () => {
    assert.equal((await get('/welcome/static/escape.txt')).status, 404);
    assert.equal((await get('/welcome/static/outdir/x.txt')).status, 404);
  });
});

describe('remembered URL mappings (serve.ts MappedUrls): the same answer every time', () => {
  test('a refused or passed URL asked again gets the same answer', async () => {
    for (const path of ['/welcome/static/%252e%252e/private.txt', '/welcome/static/.htaccess', '/welcome/static/_1.2.3', '/welcome/static/']) {
      const first = await get(path);
      const again = await get(path);
      assert.equal(again.status, first.status, path);
      assert.deepEqual(again.body, first.body, path);
    }
  });

  test('the query is part of what is remembered: ?attachment, then none, then again', async () => {
    for (const query of ['?attachment', '', '?attachment', '?x', '']) {
      const answer = await get(`/welcome/static/my_file.txt${query}`);
      assert.equal(answer.status, 200);
      assert.equal(answer.headers['content-disposition'], query === '?attachment' ? 'attachment' : undefined, query);
    }
  });

  test('a percent-encoded "?" in the path is not a query', async () => {
    assert.equal((await get('/welcome/static/my_file.txt?attachment')).headers['content-disposition'], 'attachment');
    const encoded = await get('/welcome/static/my_file.txt%3Fattachment');
    assert.equal(encoded.status, 404);
    assert.equal(encoded.headers['content-disposition'], undefined);
  });

  test('past the memo\'s bound (1,024 URLs) every answer is still right', async () => {
    for (let i = 0; i < 1100; i += 1) {
      const answer = await get(`/welcome/static/my_file.txt?v=${i}`);
      assert.equal(answer.status, 200);
    }
    assert.equal((await get('/welcome/static/%252e%252e/private.txt')).status, 400);
    assert.equal((await get('/welcome/static/my_file.txt?attachment')).headers['content-disposition'], 'attachment');
    assert.equal((await get('/welcome/static/my_file.txt')).headers['content-disposition'], undefined);
  });

  test('a long path or query (mapped each time, not remembered) gets the same answers', async () => {
    const long = 'a'.repeat(600);
    assert.equal((await get(`/welcome/static/my_file.txt?attachment${long}`)).headers['content-disposition'], 'attachment');
    assert.equal((await get(`/welcome/static/my_file.txt?${long}`)).headers['content-disposition'], undefined);
    assert.equal((await get(`/welcome/static/${long}/%252e%252e/private.txt`)).status, 400);
    assert.equal((await get(`/welcome/static/${long}.css`)).status, 404);
  });
});

describe('a file that shrinks while it is sent', () => {
  test('the connection is cut, never reused: the next pipelined answer is not read as the rest of the body', async () => {
    const big = join(staticDir, 'shrinking.bin');
    writeFileSync(big, '');
    truncateSync(big, 64 * 1024 * 1024); // sparse: no disk written
    const download = await downloadWhileShrinking(port, 'GET /welcome/static/shrinking.bin HTTP/1.1\r\nHost: x\r\n\r\n'
      + 'GET /welcome/static/my_file.txt HTTP/1.1\r\nHost: x\r\n\r\n', big, 32 * 1024 * 1024);
    assert.equal(download.contentLength, 64 * 1024 * 1024);
    assert.ok(download.closed, 'the connection is closed');
    assert.ok(download.bodyBytes < download.contentLength, `a short body (${download.bodyBytes} bytes) is never made to look whole`);
    assert.ok(!download.text.includes('underscored'), 'the next answer never follows a short body');
    const after = await get('/welcome/static/my_file.txt');
    assert.equal(after.body.toString(), 'underscored\n', 'the server carries on');
  });
});
