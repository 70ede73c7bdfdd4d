/**
 * Black-box: trusted reverse proxies. One server trusts 127.0.0.1/32; requests from 127.0.0.1
 * play the proxy, requests bound to 127.0.0.2 (also loopback, not trusted) play a client that
 * reaches the server directly and forges the headers. A second server listens dual-stack (`::`)
 * so that peers are IPv4-mapped (`::ffff:127.0.0.1`) and trusts only Forwarded.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixtures, runToExit, startServer, type StartedServer } from '../helpers/server.js';

const apps = join(fixtures, 'apps');

interface Answer { status: number; body: string }

function call(port: number, path: string, options: { host?: string; from?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: options.host ?? '127.0.0.1', port, path, headers: options.headers, agent: false,
      ...(options.from === undefined ? {} : { localAddress: options.from }),
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function environ(port: number, options: Parameters<typeof call>[2] = {}): Promise<Record<string, string>> {
  const answer = await call(port, '/echo', options);
  assert.equal(answer.status, 200, answer.body);
  return (JSON.parse(answer.body) as { environ: Record<string, string> }).environ;
}

const forged = { 'X-Forwarded-Proto': 'https', 'X-Forwarded-For': '127.0.0.1', 'X-Forwarded-Host': 'evil.example', Forwarded: 'for=127.0.0.1;proto=https' };
const forwardingKeys = (env: Record<string, string>): string[] => Object.keys(env).filter((key) => key.includes('FORWARDED'));

describe('trusting 127.0.0.1/32 (default --proxy-headers)', () => {
  let server: StartedServer;
  let logFolder: string;

  before(async () => {
    logFolder = mkdtempSync(join(tmpdir(), 'w2n-proxies-'));
    // -l writes httpserver.log into the -f folder; the fixture app is found through PYTHONPATH.
    server = await startServer(['--app', 'suite:app', '-f', logFolder, '-l', '--trusted-proxies', '127.0.0.1/32'], { env: { PYTHONPATH: apps } });
  });
  after(async () => {
    await server.stop();
  });

  test('the start-up output says whom it trusts, and for what', () => {
    assert.match(server.stdout(), /^trusted proxies: 127\.0\.0\.1\/32 \(believed about: x-forwarded-for, x-forwarded-proto\)$/m);
  });

  test('a forged X-Forwarded-Proto: https from an untrusted address never makes the request https', async () => {
    const env = await environ(server.port, { from: '127.0.0.2', headers: forged });
    assert.equal(env.REMOTE_ADDR, '127.0.0.2');
    assert.equal(env['wsgi.url_scheme'], 'http');
    assert.equal(env.HTTPS, undefined);
    assert.deepEqual(forwardingKeys(env), []);
    assert.equal(env.HTTP_HOST, `127.0.0.1:${server.port}`);
  });

  test('the same from the trusted proxy does', async () => {
    const env = await environ(server.port, { from: '127.0.0.1', headers: { 'X-Forwarded-Proto': 'https' } });
    assert.equal(env['wsgi.url_scheme'], 'https');
    assert.equal(env.HTTPS, 'on');
    assert.equal(env.HTTP_X_FORWARDED_PROTO, 'https');
    assert.equal(env.REMOTE_ADDR, '127.0.0.1');
  });

  test('REMOTE_ADDR from the X-Forwarded-For chain; the app sees only that address; SERVER_PORT stays the listener\'s', async () => {
    const env = await environ(server.port, { headers: { 'X-Forwarded-For': '10.9.9.9, 203.0.113.9, 127.0.0.1', 'X-Forwarded-Host': 'evil.example' } });
    assert.equal(env.REMOTE_ADDR, '203.0.113.9');
    assert.equal(env.HTTP_X_FORWARDED_FOR, '203.0.113.9');
    assert.equal(env.SERVER_PORT, String(server.port));
    // X-Forwarded-Host is not in the default: dropped, Host untouched.
    assert.equal(env.HTTP_X_FORWARDED_HOST, undefined);
    assert.equal(env.HTTP_HOST, `127.0.0.1:${server.port}`);
  });

  test('a malformed header from the trusted proxy gets 400; from anyone else it is just dropped', async () => {
    const bad = { 'X-Forwarded-For': '203.0.113.9, not-an-address' };
    const fromProxy = await call(server.port, '/echo', { headers: bad });
    assert.equal(fromProxy.status, 400);
    assert.match(fromProxy.body, /X-Forwarded-For from a trusted proxy: the client's hop \("not-an-address"\) is not an address/);
    assert.equal((await environ(server.port, { from: '127.0.0.2', headers: bad })).REMOTE_ADDR, '127.0.0.2');
  });

  test('/metrics is for loopback clients as resolved: through the proxy, the world gets the application', async () => {
    assert.equal((await call(server.port, '/metrics', { headers: { 'X-Forwarded-For': '203.0.113.9' } })).body, 'no such fixture app\n');
    assert.match((await call(server.port, '/metrics')).body, /^# HELP /m);
  });

  test('the access log shows the client as web2py sees it (REMOTE_ADDR)', async () => {
    await call(server.port, '/hello', { headers: { 'X-Forwarded-For': '6.6.6.6, 198.51.100.23' } });
    await call(server.port, '/hello', { from: '127.0.0.2', headers: { 'X-Forwarded-For': '198.51.100.99' } });
    assert.equal(await server.stop(), 0);
    const lines = readFileSync(join(logFolder, 'httpserver.log'), 'utf8').trim().split('\n');
    assert.match(lines.at(-2)!, /^198\.51\.100\.23, .*, GET, \/hello, HTTP\/1\.1, 200, /);
    assert.match(lines.at(-1)!, /^127\.0\.0\.2, .*, GET, \/hello, HTTP\/1\.1, 200, /);
  });
});

describe('dual-stack listener, Forwarded only', () => {
  let server: StartedServer;

  before(async () => {
    server = await startServer(['-i', '::', '--app', 'suite:app', '-f', apps, '--trusted-proxies', '127.0.0.1', '--proxy-headers', 'forwarded']);
  });
  after(async () => {
    await server.stop();
  });

  test('an IPv4-mapped peer (::ffff:127.0.0.1) matches 127.0.0.1; Forwarded sets client, port and scheme', async () => {
    const env = await environ(server.port, { headers: { Forwarded: 'for=127.0.0.1, for="[2001:db8::1]:4711";proto=https' } });
    assert.equal(env.REMOTE_ADDR, '2001:db8::1');
    assert.equal(env.REMOTE_PORT, '4711');
    assert.equal(env['wsgi.url_scheme'], 'https');
    assert.equal(env.HTTPS, 'on');
  });

  test('X-Forwarded-* are dropped even from the trusted proxy; ::1 is not 127.0.0.1', async () => {
    const env = await environ(server.port, { headers: { 'X-Forwarded-Proto': 'https', 'X-Forwarded-For': '203.0.113.9' } });
    assert.deepEqual([env.REMOTE_ADDR, env['wsgi.url_scheme']], ['127.0.0.1', 'http']);
    assert.deepEqual(forwardingKeys(env), []);
    const v6 = await environ(server.port, { host: '::1', headers: forged });
    assert.deepEqual([v6.REMOTE_ADDR, v6['wsgi.url_scheme']], ['::1', 'http']);
    assert.deepEqual(forwardingKeys(v6), []);
  });
});

describe('bad settings stop the start: one line, exit 2', () => {
  async function assertOneLine(args: string[], pattern: RegExp): Promise<void> {
    const result = await runToExit(['-p', '0', '--app', 'hello:app', '-f', apps, ...args]);
    assert.equal(result.code, 2, result.stderr);
    assert.equal(result.stdout, '');
    const lines = result.stderr.trim().split('\n');
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0]!, pattern);
  }

  test('a bad CIDR', async () => {
    await assertOneLine(['--trusted-proxies', '127.0.0.1,10.0.0.0/33'],
      /^web2py-on-node: error: --trusted-proxies "127\.0\.0\.1,10\.0\.0\.0\/33": "10\.0\.0\.0\/33": the prefix length must be 0 to 32 \(from argv\) \[W2N_ERR_CONFIG_BAD_VALUE\]$/);
  });

  test('a bad address from the environment', async () => {
    const result = await runToExit(['-p', '0', '--app', 'hello:app', '-f', apps], { env: { W2N_TRUSTED_PROXIES: 'proxy.example' } });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^web2py-on-node: error: --trusted-proxies "proxy\.example": "proxy\.example" is not an IPv4 or IPv6 address or CIDR \(from W2N_TRUSTED_PROXIES\) \[W2N_ERR_CONFIG_BAD_VALUE\]\n$/);
  });

  test('forwarded with x-forwarded-*', async () => {
    await assertOneLine(['--trusted-proxies', 'loopback', '--proxy-headers', 'forwarded,x-forwarded-for'], /"forwarded" excludes the x-forwarded-\* headers .*\[W2N_ERR_CONFIG_BAD_VALUE\]$/);
  });
});
