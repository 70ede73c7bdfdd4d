/**
 * Black-box: the access log on stdout (`--access-log -`, `-l -`), its formats, and X-Request-ID.
 *
 * One server runs two fronts writing JSON lines to the same stdout and trusts 127.0.0.1/32:
 * requests from 127.0.0.1 play a proxy, requests bound to 127.0.0.2 (loopback, not trusted) a
 * client that reaches the server directly. Lines are read from the server's stdout after its
 * start-up lines; they appear within the writer's flush interval, so tests poll for them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixtures, startServer, type StartedServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/waits.js';

const apps = join(fixtures, 'apps');

interface Answer { status: number; body: string; requestId: string | undefined }

function call(port: number, path: string, options: { from?: string; headers?: Record<string, string>; method?: string; body?: Buffer } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers, agent: false,
      ...(options.from === undefined ? {} : { localAddress: options.from }),
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({
        status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), requestId: res.headers['x-request-id'] as string | undefined,
      }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** The stdout lines after the start-up lines (the last one starts `access log: `). */
function accessLines(server: StartedServer): string[] {
  const out = server.stdout();
  const end = out.indexOf('\n', out.search(/^access log: /m));
  return out.slice(end + 1).split('\n').filter((line) => line !== '');
}

type JsonLine = Record<string, unknown>;

async function jsonLineOf(server: StartedServer, requestId: string): Promise<JsonLine> {
  let found: JsonLine | undefined;
  await waitUntil(`the access line of ${requestId}`, () => {
    found = accessLines(server).map((line) => JSON.parse(line) as JsonLine).find((line) => line['requestId'] === requestId);
    return found !== undefined;
  });
  return found!;
}

describe('--access-log - --access-log-format json, two fronts, trusting 127.0.0.1/32', () => {
  let server: StartedServer;

  before(async () => {
    server = await startServer(['--app', 'suite:app', '--fronts', '2', '--access-log', '-', '--access-log-format', 'json',
      '--trusted-proxies', '127.0.0.1/32', '--log-format', 'json', '--max-body', '1k'], { env: { PYTHONPATH: apps } });
  });
  after(async () => {
    await server.stop();
  });

  test('the start-up lines are all there, the last says where the access log goes', () => {
    assert.match(server.stdout(), /^starting on 127\.0\.0\.1:\d+\.\.\.$/m);
    assert.match(server.stdout(), /^access log: stdout \(json format\)$/m);
  });

  test('a trusted proxy\'s X-Request-ID is the app\'s HTTP_X_REQUEST_ID, the answer\'s and the access line\'s', async () => {
    const answer = await call(server.port, '/echo/x', { headers: { 'X-Request-ID': 'proxy-id-42', 'User-Agent': 'agent/1' } });
    assert.equal(answer.status, 200);
    assert.equal(answer.requestId, 'proxy-id-42');
    assert.equal((JSON.parse(answer.body) as { environ: Record<string, string> }).environ['HTTP_X_REQUEST_ID'], 'proxy-id-42');
    const line = await jsonLineOf(server, 'proxy-id-42');
    assert.equal(line['uri'], '/echo/x');
    assert.equal(line['status'], 200);
    assert.equal(line['bytes'], Buffer.byteLength(answer.body));
    assert.equal(line['userAgent'], 'agent/1');
    assert.equal(typeof line['durationSeconds'], 'number');
  });

  test('a client\'s own X-Request-ID never reaches the app: replaced, and the new one is everywhere', async () => {
    const answer = await call(server.port, '/echo/y', { from: '127.0.0.2', headers: { 'X-Request-ID': 'forged-by-client' } });
    assert.equal(answer.status, 200);
    assert.ok(answer.requestId !== undefined && answer.requestId !== 'forged-by-client');
    assert.equal((JSON.parse(answer.body) as { environ: Record<string, string> }).environ['HTTP_X_REQUEST_ID'], answer.requestId);
    assert.equal((await jsonLineOf(server, answer.requestId))['remoteAddr'], '127.0.0.2');
  });

  test('a malformed X-Request-ID, even from the trusted proxy, is replaced', async () => {
    for (const bad of ['has space', 'x'.repeat(201), 'quo"te', 'id-a,id-b']) {
      const answer = await call(server.port, '/echo/z', { headers: { 'X-Request-ID': bad } });
      assert.ok(answer.requestId !== undefined && answer.requestId !== bad, bad);
      assert.equal((JSON.parse(answer.body) as { environ: Record<string, string> }).environ['HTTP_X_REQUEST_ID'], answer.requestId);
    }
  });

  test('front-made errors carry the id too, and the server log line about the failure says it', async () => {
    const failed = await call(server.port, '/boom');
    assert.equal(failed.status, 500);
    assert.ok(failed.requestId !== undefined);
    await waitUntil('request.failed with the request id', () => server.stderr().split('\n').some((line) => line.includes('"request.failed"') && line.includes(failed.requestId!)));
    assert.equal((await jsonLineOf(server, failed.requestId))['status'], 500);

    const tooLarge = await call(server.port, '/upload', { method: 'POST', headers: { 'X-Request-ID': 'big-body-1' }, body: Buffer.alloc(4096) });
    assert.equal(tooLarge.status, 413);
    assert.equal(tooLarge.requestId, 'big-body-1');
    assert.equal((await jsonLineOf(server, 'big-body-1'))['status'], 413);
  });

  test('hostile header values stay inside their fields; every line of both fronts is whole JSON', async () => {
    // Node's client refuses control characters in a header (the unit tests send those); the rest goes.
    const hostile = 'evil"\\ } {"status":999, "requestId":"x", \xe9 end';
    const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => call(server.port, `/hello?n=${i}&pad=${'p'.repeat(i * 50)}`, {
      headers: { 'User-Agent': hostile, Referer: `http://r/${'x'.repeat(900)}` },
    })));
    const ids = new Set(answers.map((answer) => answer.requestId));
    await waitUntil('60 access lines', () => accessLines(server).filter((line) => ids.has((JSON.parse(line) as JsonLine)['requestId'] as string)).length === 60);
    for (const line of accessLines(server)) {
      assert.match(line, /^\{"time":".*\}$/, 'a whole object per line');
      const parsed = JSON.parse(line) as JsonLine;
      if (!ids.has(parsed['requestId'] as string)) continue;
      assert.equal(parsed['status'], 200);
      assert.equal(parsed['userAgent'], hostile);
    }
  });
});

describe('-l - (the seed\'s -l, to stdout) and --access-log-format combined', () => {
  test('-l -: web2py\'s line on stdout', async () => {
    const server = await startServer(['--app', 'suite:app', '-l', '-'], { env: { PYTHONPATH: apps } });
    try {
      assert.match(server.stdout(), /^access log: stdout \(web2py format\)$/m);
      await call(server.port, '/hello');
      await waitUntil('the line', () => accessLines(server).length > 0);
      assert.match(accessLines(server)[0]!, /^127\.0\.0\.1, \d{4}-\d\d-\d\d \d\d:\d\d:\d\d, GET, \/hello, HTTP\/1\.1, 200, \d+\.\d{6}$/);
    } finally {
      await server.stop();
    }
  });

  test('combined: nginx\'s line, then the duration and the request id; quotes in a header escaped', async () => {
    const server = await startServer(['--app', 'suite:app', '--access-log', '-', '--access-log-format', 'combined'], { env: { PYTHONPATH: apps } });
    try {
      const answer = await call(server.port, '/hello?a=1', { headers: { 'User-Agent': 'say "hi"', Referer: 'http://r/' } });
      await waitUntil('the line', () => accessLines(server).length > 0);
      const pattern = /^127\.0\.0\.1 - - \[\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "GET \/hello\?a=1 HTTP\/1\.1" 200 (\d+) "http:\/\/r\/" "say \\x22hi\\x22" \d+\.\d{6} "([^"]+)"$/;
      const fields = pattern.exec(accessLines(server)[0]!);
      assert.ok(fields !== null, accessLines(server)[0]);
      assert.equal(Number(fields[1]), Buffer.byteLength(answer.body));
      assert.equal(fields[2], answer.requestId);
    } finally {
      await server.stop();
    }
  });
});

describe('static files served by the front, and a relative --access-log (in the web2py folder)', () => {
  let scratch: string;
  let server: StartedServer;
  let logFile: string;

  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'w2n-access-static-'));
    const folder = join(scratch, 'web2py');
    cpSync(join(fixtures, 'web2py'), folder, { recursive: true });
    logFile = join(folder, 'custom-access.log');
    server = await startServer(['-f', folder, '-a', 'access-test-password', '--static-offload', 'on',
      '--access-log', 'custom-access.log', '--access-log-format', 'combined']);
  });
  after(async () => {
    await server.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  test('every answer (disk, memory cache, 404, the application) has its id in the header and its access line', async () => {
    assert.match(server.stdout(), new RegExp(`^access log: ${logFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(combined format\\)$`, 'm'));
    const paths = ['/welcome/static/css/web2py.css', '/welcome/static/css/web2py.css', '/welcome/static/css/missing.css', '/welcome/default/index'];
    const answers: Answer[] = [];
    for (const path of paths) answers.push(await call(server.port, path, { headers: { 'X-Request-ID': 'not-trusted' } }));
    assert.deepEqual(answers.map((answer) => answer.status), [200, 200, 404, 200]);
    const lineOf = (id: string): string | undefined => readFileSync(logFile, 'utf8').split('\n').find((line) => line.endsWith(`"${id}"`));
    for (const [index, answer] of answers.entries()) {
      assert.ok(answer.requestId !== undefined && answer.requestId !== 'not-trusted', paths[index]);
      await waitUntil(`the line of ${paths[index]!}`, () => existsSync(logFile) && lineOf(answer.requestId!) !== undefined);
      const fields = /"GET (\S+) HTTP\/1\.1" (\d+) (\d+) /.exec(lineOf(answer.requestId!)!);
      assert.ok(fields !== null);
      assert.deepEqual([fields[1], Number(fields[2]), Number(fields[3])], [paths[index], answer.status, Buffer.byteLength(answer.body)]);
    }
  });
});

