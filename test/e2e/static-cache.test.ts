/**
 * @module The in-memory static file cache end to end: an answer from memory is the answer from
 * disk (status, every header but Date, body) for each kind of request; a changed file is seen;
 * the cache stays within its bounds. createStaticHandler on a real node:http server over a temp
 * copy of the web2py fixture (as static.test.ts).
 */
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { brotliCompressSync, gzipSync } from 'node:zlib';

import { decodePath } from '../../src/front/environ.js';
import { FileCache, RECHECK_MS, REVALIDATE_MS } from '../../src/front/static/file-cache.js';
import { createStaticHandler } from '../../src/front/static/serve.js';
import { createLogger } from '../../src/observability/log.js';
import { fixtures } from '../helpers/server.js';
import { httpGet, type HttpAnswer } from '../helpers/http-get.js';
import { deliberateWait, waitUntil } from '../helpers/waits.js';

let scratch: string;
let staticDir: string;
let css: Buffer;
const servers: Server[] = [];
/** A server without cache: every answer comes from disk (send). */
let diskPort: number;

function listen(cache: FileCache, web2py: string): Promise<number> {
  const handle = createStaticHandler({ web2pyFolder: web2py, log: createLogger({ level: 'silent', format: 'json' }), cache });
  const server = createServer((req, res) => {
    const target = req.url ?? '/';
    const question = target.indexOf('?');
    if (!handle(req, res, decodePath(question < 0 ? target : target.slice(0, question)))) {
      res.statusCode = 599;
      res.end();
    }
  });
  servers.push(server);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function get(port: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<HttpAnswer> {
  return httpGet(port, path, { headers, method });
}

/** Headers as a comparable list: names in order, without Date (it changes each second). */
function comparable(answer: HttpAnswer): { status: number; headers: [string, unknown][]; body: string } {
  const headers = Object.entries(answer.headers).filter(([name]) => name !== 'date');
  return { status: answer.status, headers, body: answer.body.toString('base64') };
}

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  await waitUntil(what, condition, timeoutMs);
}

/** Waits until the fills the requests so far began (in the background, serve.ts) have ended. */
function fillsEnded(cache: FileCache): Promise<void> {
  return waitUntil('the cache fills to end', () => cache.fillsUnderWay === 0);
}

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'w2n-static-cache-'));
  cpSync(join(fixtures, 'web2py'), join(scratch, 'web2py'), { recursive: true });
  staticDir = join(scratch, 'web2py', 'applications', 'welcome', 'static');
  css = readFileSync(join(staticDir, 'css', 'web2py.css'));
  const cssTime = statSync(join(staticDir, 'css', 'web2py.css')).mtime;
  writeFileSync(join(staticDir, 'css', 'web2py.css.gz'), gzipSync(css));
  writeFileSync(join(staticDir, 'css', 'web2py.css.br'), brotliCompressSync(css));
  utimesSync(join(staticDir, 'css', 'web2py.css'), cssTime, cssTime);
  writeFileSync(join(staticDir, 'js', 'app.js.gz'), gzipSync(Buffer.from('stale')));
  utimesSync(join(staticDir, 'js', 'app.js.gz'), new Date(0), new Date(0));
  writeFileSync(join(staticDir, 'big.bin'), Buffer.alloc(64 * 1024, 7));
  diskPort = await listen(new FileCache({ maxBytes: 0, maxFileBytes: 0 }), join(scratch, 'web2py'));
});

after(async () => {
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  rmSync(scratch, { recursive: true, force: true });
});

describe('an answer from memory is the answer from disk', () => {
  const cases: { name: string; path: string; headers?: Record<string, string>; method?: string }[] = [
    { name: 'plain', path: '/welcome/static/css/web2py.css' },
    { name: 'versioned', path: '/welcome/static/_2.1.1/css/web2py.css' },
    { name: 'attachment', path: '/welcome/static/js/app.js?attachment' },
    { name: 'gzip sibling', path: '/welcome/static/css/web2py.css', headers: { 'Accept-Encoding': 'gzip' } },
    { name: 'br sibling', path: '/welcome/static/css/web2py.css', headers: { 'Accept-Encoding': 'gzip, br' } },
    { name: 'stale sibling ignored', path: '/welcome/static/js/app.js', headers: { 'Accept-Encoding': 'gzip' } },
    { name: 'HEAD', path: '/welcome/static/css/web2py.css', method: 'HEAD' },
  ];
  for (const { name, path, headers = {}, method = 'GET' } of cases) {
    test(name, async () => {
      const cache = new FileCache({ maxBytes: 1024 * 1024, maxFileBytes: 256 * 1024 });
      const port = await listen(cache, join(scratch, 'web2py'));
      await get(port, path, headers, method);
      await until(() => cache.bytes > 0, 'the cache to fill');
      const fromMemory = await get(port, path, headers, method);
      const fromDisk = await get(diskPort, path, headers, method);
      assert.equal(cache.hits, 1, 'the second answer came from memory');
      assert.deepEqual(comparable(fromMemory), comparable(fromDisk));
    });
  }

  test('304 by ETag and by Last-Modified, as from disk', async () => {
    const cache = new FileCache({ maxBytes: 1024 * 1024, maxFileBytes: 256 * 1024 });
    const port = await listen(cache, join(scratch, 'web2py'));
    const first = await get(port, '/welcome/static/css/web2py.css', { 'Accept-Encoding': 'gzip' });
    await until(() => cache.bytes > 0, 'the cache to fill');
    const validators: Record<string, string>[] = [
      { 'Accept-Encoding': 'gzip', 'If-None-Match': String(first.headers.etag) },
      { 'If-Modified-Since': String(first.headers['last-modified']) },
    ];
    for (const headers of validators) {
      const fromMemory = await get(port, '/welcome/static/css/web2py.css', headers);
      assert.equal(fromMemory.status, 304);
      assert.deepEqual(comparable(fromMemory), comparable(await get(diskPort, '/welcome/static/css/web2py.css', headers)));
    }
    assert.equal(cache.hits, 2);
  });

  test('the same file under URLs remembered apart (serve.ts MappedUrls): each its own answer, as from disk', async () => {
    const cache = new FileCache({ maxBytes: 1024 * 1024, maxFileBytes: 256 * 1024 });
    const port = await listen(cache, join(scratch, 'web2py'));
    await get(port, '/welcome/static/js/app.js');
    await until(() => cache.bytes > 0, 'the cache to fill');
    const paths = ['/welcome/static/js/app.js?attachment', '/welcome/static/js/app.js', '/welcome/static/_2.1.1/js/app.js',
      '/welcome/static/js/app.js?attachment', '/welcome/static/js/app.js%3Fattachment', '/welcome/static/js/%2e%2e/app.js', '/welcome/static/js/app.js'];
    for (const path of paths) {
      for (const method of ['GET', 'HEAD']) {
        assert.deepEqual(comparable(await get(port, path, {}, method)), comparable(await get(diskPort, path, {}, method)), `${method} ${path}`);
      }
    }
    assert.equal(cache.hits, 10, 'the five requests of the file, GET and HEAD each, from memory');
  });

  test('ranges and If-Match go to disk, and are right', async () => {
    const cache = new FileCache({ maxBytes: 1024 * 1024, maxFileBytes: 256 * 1024 });
    const port = await listen(cache, join(scratch, 'web2py'));
    await get(port, '/welcome/static/css/web2py.css');
    await until(() => cache.bytes > 0, 'the cache to fill');
    const range = await get(port, '/welcome/static/css/web2py.css', { Range: 'bytes=0-9' });
    assert.equal(range.status, 206);
    assert.deepEqual(range.body, css.subarray(0, 10));
    const ifMatch = await get(port, '/welcome/static/css/web2py.css', { 'If-Match': '"nope"' });
    assert.equal(ifMatch.status, 412);
    assert.equal(cache.hits, 0);
  });
});

describe('freshness and bounds', () => {
  test('a changed file is served new, without waiting for the revalidation period', async () => {
    const web2py = join(scratch, 'changing');
    cpSync(join(fixtures, 'web2py'), web2py, { recursive: true });
    const file = join(web2py, 'applications', 'welcome', 'static', 'js', 'app.js');
    const cache = new FileCache({ maxBytes: 1024 * 1024, maxFileBytes: 256 * 1024 });
    const port = await listen(cache, web2py);
    await get(port, '/welcome/static/js/app.js');
    await until(() => cache.bytes > 0, 'the cache to fill');
    assert.equal((await get(port, '/welcome/static/js/app.js')).body.toString(), readFileSync(file, 'utf8'));
    writeFileSync(file, 'changed();\n');
    // The watch drops the entry at once; REVALIDATE_MS is the bound when a watch misses.
    await until(async () => (await get(port, '/welcome/static/js/app.js')).body.toString() === 'changed();\n',
      'the new content', REVALIDATE_MS * 3);
  });

  test('a hot file stays in memory past the revalidation period (rechecked in the background, not expired)', async () => {
    const cache = new FileCache({ maxBytes: 1024 * 1024, maxFileBytes: 256 * 1024 });
    const port = await listen(cache, join(scratch, 'web2py'));
    await get(port, '/welcome/static/css/web2py.css');
    await until(() => cache.bytes > 0, 'the cache to fill');
    const started = performance.now();
    let asked = 0;
    while (performance.now() - started < REVALIDATE_MS * 2.5) {
      assert.deepEqual((await get(port, '/welcome/static/css/web2py.css')).body, css);
      asked += 1;
      await deliberateWait(20, 'requests spread over more than two revalidation periods');
    }
    assert.equal(cache.hits, asked, 'every answer after the first came from memory');
  });

  test('a change no watch sees (a folder symlink swapped) is served within the bound', async () => {
    const web2py = join(scratch, 'swapped');
    cpSync(join(fixtures, 'web2py'), web2py, { recursive: true });
    const staticFolder = join(web2py, 'applications', 'welcome', 'static');
    mkdirSync(join(staticFolder, 'v1'));
    mkdirSync(join(staticFolder, 'v2'));
    writeFileSync(join(staticFolder, 'v1', 'site.css'), 'one {}\n');
    writeFileSync(join(staticFolder, 'v2', 'site.css'), 'two {}\n');
    symlinkSync('v1', join(staticFolder, 'live'));
    const cache = new FileCache({ maxBytes: 1024 * 1024, maxFileBytes: 256 * 1024 });
    const port = await listen(cache, web2py);
    await get(port, '/welcome/static/live/site.css');
    await until(() => cache.bytes > 0, 'the cache to fill');
    // Hits past RECHECK_MS start the recheck that must see the swap.
    await deliberateWait(RECHECK_MS + 50, 'the entry old enough for a hit to start a recheck');
    assert.equal((await get(port, '/welcome/static/live/site.css')).body.toString(), 'one {}\n');
    symlinkSync('v2', join(staticFolder, 'live.new'));
    renameSync(join(staticFolder, 'live.new'), join(staticFolder, 'live'));
    await until(async () => (await get(port, '/welcome/static/live/site.css')).body.toString() === 'two {}\n',
      'the new folder\'s file', REVALIDATE_MS * 3);
  });

  test('an application\'s static folder swapped for another (a new root): its files, under a URL already remembered', async () => {
    const web2py = join(scratch, 'rooted');
    cpSync(join(fixtures, 'web2py'), web2py, { recursive: true });
    const app = join(web2py, 'applications', 'welcome');
    mkdirSync(join(app, 'static.v1'));
    mkdirSync(join(app, 'static.v2'));
    writeFileSync(join(app, 'static.v1', 'site.css'), 'one {}\n');
    writeFileSync(join(app, 'static.v2', 'site.css'), 'two {}\n');
    rmSync(join(app, 'static'), { recursive: true });
    symlinkSync('static.v1', join(app, 'static'));
    const cache = new FileCache({ maxBytes: 1024 * 1024, maxFileBytes: 256 * 1024 });
    const port = await listen(cache, web2py);
    await get(port, '/welcome/static/site.css');
    await until(() => cache.bytes > 0, 'the cache to fill');
    assert.equal((await get(port, '/welcome/static/site.css')).body.toString(), 'one {}\n');
    symlinkSync('static.v2', join(app, 'static.new'));
    renameSync(join(app, 'static.new'), join(app, 'static'));
    // The folder's realpath is trusted for 5 s (serve.ts ROOT_TTL_MS), an entry for REVALIDATE_MS.
    await until(async () => (await get(port, '/welcome/static/site.css')).body.toString() === 'two {}\n',
      'the new folder\'s file', 5_000 + REVALIDATE_MS * 3);
  });

  test('files above the per-file limit are never kept; the total stays within its bound', async () => {
    const cache = new FileCache({ maxBytes: css.length + 10, maxFileBytes: 32 * 1024 });
    const port = await listen(cache, join(scratch, 'web2py'));
    const big = await get(port, '/welcome/static/big.bin');
    assert.equal(big.body.length, 64 * 1024);
    await fillsEnded(cache);
    assert.equal(cache.bytes, 0);
    // web2py.css alone fits; its siblings would not: kept only as a whole, so not kept.
    for (const path of ['/welcome/static/css/web2py.css', '/welcome/static/js/app.js']) {
      await get(port, path);
      await fillsEnded(cache);
      assert.ok(cache.bytes <= css.length + 10, `cache holds ${cache.bytes} bytes`);
    }
  });

  test('a cache of size 0 is off', async () => {
    const cache = new FileCache({ maxBytes: 0, maxFileBytes: 256 * 1024 });
    const port = await listen(cache, join(scratch, 'web2py'));
    for (let i = 0; i < 3; i += 1) assert.deepEqual((await get(port, '/welcome/static/css/web2py.css')).body, css);
    assert.equal(cache.hits, 0);
    assert.equal(cache.bytes, 0);
  });
});
