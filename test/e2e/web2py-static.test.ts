/**
 * @module The front's static answers are web2py's: the same URLs asked of a server with
 * `--static-offload on` (answered by Node) and one with `--static-offload off` (answered by
 * web2py's own code in the worker) get the same status, body and web2py headers.
 *
 * In CI "web2py" is the fixture's gluon/static.py, written from web2py's behaviour; with
 * W2N_TEST_WEB2PY=/path/to/web2py the same comparison runs against real web2py (a copy of the
 * tree is made, since the test adds files to welcome/static).
 *
 * Compared: status, body, Content-Type, Content-Length, Last-Modified, Cache-Control, Expires,
 * Pragma, Content-Disposition, Content-Encoding, Content-Range, web2py_error. Not compared, on
 * purpose (README, static files): ETag and Accept-Ranges (the front adds them), Vary (the front
 * sends it whenever a precompressed sibling exists, so caches do not mix the two), Date, Server,
 * and the reason phrase (web2py's are in capitals, which HTTP/1.1 clients ignore). A 304 is
 * compared apart: the front's carries the validators and caching headers RFC 9110 asks for.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';

import { fixtures, startServer, type StartedServer } from '../helpers/server.js';
import { httpGet, type HttpAnswer } from '../helpers/http-get.js';

const realWeb2py = process.env.W2N_TEST_WEB2PY;
const COMPARED = [
  'content-type', 'content-length', 'last-modified', 'cache-control', 'expires', 'pragma',
  'content-disposition', 'content-encoding', 'content-range', 'web2py_error',
] as const;

/** One GET with exactly these headers (no Accept-Encoding unless given); `path` is sent as is. */
function get(port: number, path: string, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  return httpGet(port, path, { headers });
}

function picked(answer: HttpAnswer): Record<string, unknown> {
  const out: Record<string, unknown> = { status: answer.status, body: answer.body.toString('latin1') };
  for (const name of COMPARED) out[name] = answer.headers[name];
  return out;
}

let scratch: string;
let folder: string;
let front: StartedServer;
let web2py: StartedServer;

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'w2n-w2p-static-'));
  folder = join(scratch, 'web2py');
  // A real tree: its code and the welcome app (the others are not needed, and admin is large).
  cpSync(realWeb2py ?? join(fixtures, 'web2py'), folder, {
    recursive: true,
    filter: (source) => !/[/\\]applications[/\\](?:admin|examples)(?:[/\\]|$)/.test(source) && !/[/\\]\.git(?:[/\\]|$)/.test(source),
  });
  const staticDir = join(folder, 'applications', 'welcome', 'static');
  const cssFile = join(staticDir, 'css', 'web2py.css');
  writeFileSync(join(staticDir, 'my_file.txt'), 'underscored\n');
  writeFileSync(join(staticDir, 'data.txt'), 'abcdefghijklmnopqrstuvwxyz\n'.repeat(40));
  writeFileSync(`${cssFile}.gz`, gzipSync(readFileSync(cssFile)));
  // Plainly newer than the file it compresses: a stale sibling is never chosen.
  const cssTime = statSync(cssFile).mtime;
  utimesSync(`${cssFile}.gz`, new Date(cssTime.getTime() + 2000), new Date(cssTime.getTime() + 2000));
  [front, web2py] = await Promise.all([
    startServer(['-f', folder, '-a', 'static-test-password', '--static-offload', 'on']),
    startServer(['-f', folder, '-a', 'static-test-password', '--static-offload', 'off']),
  ]);
});

after(async () => {
  await Promise.all([front?.stop(), web2py?.stop()]);
  rmSync(scratch, { recursive: true, force: true });
});

/** Asks both servers; the answers must agree on everything compared. Returns the front's. */
async function same(path: string, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  const [ours, theirs] = await Promise.all([get(front.port, path, headers), get(web2py.port, path, headers)]);
  assert.deepEqual(picked(ours), picked(theirs), `${path} ${JSON.stringify(headers)}`);
  return ours;
}

describe('static files: the front answers as web2py does', () => {
  test('a plain file: 200, body, type, length, Last-Modified, private caching', async () => {
    const answer = await same('/welcome/static/css/web2py.css');
    assert.equal(answer.status, 200);
    assert.equal(answer.headers['cache-control'], 'private');
    assert.equal(answer.headers.pragma, 'cache');
    assert.match(String(answer.headers['content-type']), /^text\/css/);
  });

  test('a versioned URL (/static/_2.25.1/...): far-future caching', async () => {
    const answer = await same('/welcome/static/_2.25.1/css/web2py.css');
    assert.equal(answer.status, 200);
    assert.equal(answer.headers['cache-control'], 'max-age=315360000');
    assert.equal(answer.headers.expires, 'Thu, 31 Dec 2037 23:59:59 GMT');
  });

  test('?attachment: Content-Disposition attachment', async () => {
    const answer = await same('/welcome/static/data.txt?attachment');
    assert.equal(answer.headers['content-disposition'], 'attachment');
  });

  test('spaces in the name are underscores; a trailing slash is dropped', async () => {
    assert.equal((await same('/welcome/static/my%20file.txt')).body.toString(), 'underscored\n');
    assert.equal((await same('/welcome/static/my_file.txt/')).status, 200);
  });

  test('missing file 404, folder 403, no file named 404', async () => {
    assert.equal((await same('/welcome/static/css/missing.css')).status, 404);
    assert.equal((await same('/welcome/static/css')).status, 403);
    assert.equal((await same('/welcome/static/')).status, 404);
  });

  test('a path out of the static folder is 400 invalid request, raw or percent-encoded', async () => {
    for (const path of ['/welcome/static/../../../gluon/main.py', '/welcome/static/%2e%2e/%2e%2e/%2e%2e/gluon/main.py', '/welcome/static/css/..%2f..%2f..%2fcontrollers/default.py']) {
      const answer = await same(path);
      assert.equal(answer.status, 400, path);
      assert.match(answer.body.toString(), /invalid request/, path);
    }
  });

  test('an application that does not exist: whatever web2py says', async () => {
    assert.equal((await same('/nosuchapp/static/css/web2py.css')).status, 404);
  });

  test('Accept-Encoding: gzip gets the newer .gz sibling', async () => {
    const answer = await same('/welcome/static/css/web2py.css', { 'accept-encoding': 'gzip' });
    assert.equal(answer.headers['content-encoding'], 'gzip');
  });

  test('If-Modified-Since equal to Last-Modified: 304 with no body; an older date: 200', async () => {
    const lastModified = String((await get(front.port, '/welcome/static/data.txt')).headers['last-modified']);
    const headers = { 'if-modified-since': lastModified };
    const [ours, theirs] = await Promise.all([get(front.port, '/welcome/static/data.txt', headers), get(web2py.port, '/welcome/static/data.txt', headers)]);
    assert.deepEqual([ours.status, ours.body.length], [304, 0]);
    assert.deepEqual([theirs.status, theirs.body.length], [304, 0]);
    // web2py's 304 carries only a Content-Type; the front's carries what the 200 would have had
    // for caches to refresh (RFC 9110 §15.4.5): Last-Modified, ETag, Cache-Control.
    assert.equal(ours.headers['last-modified'], lastModified);
    assert.equal(ours.headers['cache-control'], 'private');
    assert.equal((await same('/welcome/static/data.txt', { 'if-modified-since': 'Thu, 01 Jan 1970 00:00:00 GMT' })).status, 200);
  });

  test('one byte range: 206 with Content-Range; a suffix range; an open-ended one', async () => {
    for (const range of ['bytes=0-9', 'bytes=-5', 'bytes=100-']) {
      const answer = await same('/welcome/static/data.txt', { range });
      assert.equal(answer.status, 206, range);
    }
  });
});
