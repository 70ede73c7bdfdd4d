/**
 * Several listeners: `--interfaces` (web2py's format), `--unix-socket`, client certificates, and
 * bad starts that must leave nothing listening. Real CLI, real sockets, real certificates.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as http2Connect } from 'node:http2';
import { createServer, type Server } from 'node:net';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { assertOneLine, binPath, fixtures, frontPid, runToExit, startServer, type StartedServer } from '../helpers/server.js';
import { makeCertificate } from '../helpers/tls.js';
import { isRefused } from '../helpers/raw-http.js';
import { descriptorsPerSocket } from '../helpers/descriptors.js';

const apps = join(fixtures, 'apps');
const serverCertificate = makeCertificate();
const ca = readFileSync(serverCertificate.cert, 'utf8');

interface Answer { status: number; body: string }
type RequestTarget = { port: number; host?: string; tls?: { cert?: string; key?: string } } | { socketPath: string };

function get(target: RequestTarget, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const onResponse = (res: import('node:http').IncomingMessage): void => {
      let body = '';
      res.on('data', (chunk: Buffer) => { body += chunk.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    };
    const req = 'socketPath' in target
      ? httpRequest({ socketPath: target.socketPath, path, headers: { host: 'proxied.test', ...headers } }, onResponse)
      : target.tls === undefined
        ? httpRequest({ host: target.host ?? '127.0.0.1', port: target.port, path, headers }, onResponse)
        : httpsRequest({
          host: target.host ?? '127.0.0.1', port: target.port, path, headers, ca, servername: 'localhost', agent: false,
          ...(target.tls.cert === undefined ? {} : { cert: readFileSync(target.tls.cert), key: readFileSync(target.tls.key!) }),
        }, onResponse);
    req.on('error', reject);
    req.end();
  });
}

async function environ(target: RequestTarget): Promise<Record<string, string>> {
  const answer = await get(target, '/echo');
  assert.equal(answer.status, 200, answer.body);
  return (JSON.parse(answer.body) as { environ: Record<string, string> }).environ;
}

/** Every `starting on ADDRESS...` line, in order. */
function startingLines(server: { stdout: () => string }): string[] {
  return [...server.stdout().matchAll(/^starting on (\S+)\.\.\.$/gm)].map((match) => match[1]!);
}

const portOf = (address: string): number => Number(/:(\d+)$/.exec(address)![1]);


function listenOn(options: { port: number; host: string } | { path: string }): Promise<Server> {
  const server = createServer((socket) => socket.destroy());
  server.listen(options);
  return once(server, 'listening').then(() => server);
}

async function freePort(): Promise<number> {
  const server = await listenOn({ port: 0, host: '127.0.0.1' });
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

test('--interfaces: a plain and a TLS port, each with its own SERVER_PORT and scheme; -p is said to be ignored', async () => {
  const { cert, key } = serverCertificate;
  const server = await startServer(['--app', 'suite:app', '-f', apps, '--interfaces', `127.0.0.1:0;127.0.0.1:0:${key}:${cert}`]);
  try {
    const addresses = startingLines(server);
    assert.equal(addresses.length, 2);
    const [plain, secure] = addresses.map(portOf) as [number, number];
    assert.notEqual(plain, secure);
    const plainEnv = await environ({ port: plain });
    assert.deepEqual([plainEnv.SERVER_NAME, plainEnv.SERVER_PORT, plainEnv['wsgi.url_scheme'], plainEnv.HTTPS], ['127.0.0.1', String(plain), 'http', undefined]);
    const secureEnv = await environ({ port: secure, tls: {} });
    assert.deepEqual([secureEnv.SERVER_NAME, secureEnv.SERVER_PORT, secureEnv['wsgi.url_scheme'], secureEnv.HTTPS], ['127.0.0.1', String(secure), 'https', 'on']);
    assert.match(server.stdout(), /^note: -p ignored: --interfaces names the listeners \(as web2py\.py does\)$/m);
    assert.match(server.stdout(), new RegExp(`^TLS: on for 127\\.0\\.0\\.1:${secure} \\(TLS 1\\.2 and newer; HTTP/2 and HTTP/1\\.1 by ALPN\\)$`, 'm'));
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

test('--interfaces with IPv6 in brackets: [::1]', async (t) => {
  let probe: Server;
  try {
    probe = await listenOn({ port: 0, host: '::1' });
  } catch {
    t.skip('this machine has no IPv6 loopback (::1)');
    return;
  }
  probe.close();
  const server = await startServer(['--app', 'suite:app', '-f', apps, '--interfaces', '[::1]:0;127.0.0.1:0']);
  try {
    const [v6, v4] = startingLines(server);
    assert.match(v6!, /^\[::1\]:\d+$/);
    const env = await environ({ port: portOf(v6!), host: '::1' });
    assert.deepEqual([env.SERVER_NAME, env.SERVER_PORT, env.REMOTE_ADDR], ['::1', String(portOf(v6!)), '::1']);
    assert.equal((await environ({ port: portOf(v4!) })).SERVER_NAME, '127.0.0.1');
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

test('a CA in --interfaces: a client certificate it signed reaches the app as SSL_CLIENT_RAW_CERT (HTTP/1.1 and HTTP/2)', async () => {
  const client = makeCertificate('client');
  const stranger = makeCertificate('stranger');
  const { cert, key } = serverCertificate;
  const server = await startServer(['--app', 'suite:app', '-f', apps, '--interfaces', `127.0.0.1:0:${key}:${cert}:${client.cert}`]);
  try {
    assert.match(server.stdout(), /client certificates asked for where a CA is given/);
    const clientPem = readFileSync(client.cert, 'utf8');
    const verified = await environ({ port: server.port, tls: { cert: client.cert, key: client.key } });
    assert.equal(verified.SSL_CLIENT_RAW_CERT, clientPem, 'the PEM as Python\'s DER_cert_to_PEM_cert writes it');
    assert.equal((await environ({ port: server.port, tls: {} })).SSL_CLIENT_RAW_CERT, undefined, 'no certificate: no variable');
    const unverified = await environ({ port: server.port, tls: { cert: stranger.cert, key: stranger.key } });
    assert.equal(unverified.SSL_CLIENT_RAW_CERT, undefined, 'a certificate the CA did not sign is not passed on');

    const session = http2Connect(`https://127.0.0.1:${server.port}`, { ca, servername: 'localhost', cert: readFileSync(client.cert), key: readFileSync(client.key) });
    const stream = session.request({ ':path': '/echo' });
    let body = '';
    stream.on('data', (chunk: Buffer) => { body += chunk.toString(); });
    await once(stream, 'end');
    session.close();
    const env = (JSON.parse(body) as { environ: Record<string, string> }).environ;
    assert.equal(env.SERVER_PROTOCOL, 'HTTP/2.0');
    assert.equal(env.SSL_CLIENT_RAW_CERT, clientPem);
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

test('--unix-socket beside TCP, web2py: mode as asked, REMOTE_ADDR empty (not local), SERVER_PORT of the TCP port; removed at stop', async () => {
  const scratch = mkdtempSync(join(tmpdir(), 'w2n-unix-'));
  const folder = join(scratch, 'web2py');
  cpSync(join(fixtures, 'web2py'), folder, { recursive: true });
  const socketPath = join(scratch, 'web2py.sock');
  let server: StartedServer | null = null;
  try {
    server = await startServer(['-f', folder, '-a', 'unix-test-password', '--unix-socket', socketPath, '--unix-socket-mode', '0600']);
    assert.deepEqual(startingLines(server), [`127.0.0.1:${server.port}`, `unix:${socketPath}`]);
    const stats = statSync(socketPath);
    assert.ok(stats.isSocket());
    assert.equal(stats.mode & 0o777, 0o600);
    const answer = await get({ socketPath }, '/env');
    const env = JSON.parse(answer.body) as { environ: Record<string, string>; is_local: boolean };
    assert.equal(env.environ.REMOTE_ADDR, '');
    assert.equal(env.is_local, false, 'a proxy on the socket forwards remote clients: never local');
    assert.equal(env.environ.SERVER_PORT, String(server.port), 'admin reads parameters_<SERVER_PORT>.py');
    assert.equal(env.environ.SERVER_NAME, 'localhost');
    assert.equal(env.environ.HTTP_HOST, 'proxied.test');
    assert.equal(env.environ['wsgi.url_scheme'], 'http');
    assert.ok(existsSync(join(folder, `parameters_${server.port}.py`)));
    assert.equal(await server.stop(), 0);
    assert.ok(!existsSync(socketPath), 'the socket file is removed at stop');
  } finally {
    await server?.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
});

test('--unix-socket with --trusted-proxies unix: the proxy on the socket is believed; without it, its forwarding headers are dropped', async () => {
  const scratch = mkdtempSync(join(tmpdir(), 'w2n-unix-trust-'));
  const socketPath = join(scratch, 'app.sock');
  const forwarded = { 'x-forwarded-for': '198.51.100.9, 203.0.113.7', 'x-forwarded-proto': 'https' };
  const forwardedEnviron = async (): Promise<Record<string, string>> => {
    const answer = await get({ socketPath }, '/echo', forwarded);
    return (JSON.parse(answer.body) as { environ: Record<string, string> }).environ;
  };
  let server: StartedServer | null = null;
  try {
    server = await startServer(['--app', 'suite:app', '-f', apps, '--processes', '1', '--unix-socket', socketPath, '--trusted-proxies', 'unix']);
    const trusted = await forwardedEnviron();
    assert.equal(trusted.REMOTE_ADDR, '203.0.113.7', 'the right-most X-Forwarded-For address');
    assert.equal(trusted['wsgi.url_scheme'], 'https');
    assert.equal(trusted.HTTPS, 'on');
    assert.equal(await server.stop(), 0);
    server = await startServer(['--app', 'suite:app', '-f', apps, '--processes', '1', '--unix-socket', socketPath, '--trusted-proxies', 'loopback']);
    const untrusted = await forwardedEnviron();
    assert.equal(untrusted.REMOTE_ADDR, '', 'loopback does not cover a Unix socket peer');
    assert.equal(untrusted['wsgi.url_scheme'], 'http');
    assert.equal(untrusted.HTTP_X_FORWARDED_FOR, undefined);
    assert.equal(untrusted.HTTP_X_FORWARDED_PROTO, undefined);
  } finally {
    await server?.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
});

test('--accept-batch: each TCP listening socket (plain and TLS) has N descriptors in the front, a Unix socket one; all serve', async () => {
  const scratch = mkdtempSync(join(tmpdir(), 'w2n-accept-batch-'));
  const socketPath = join(scratch, 'app.sock');
  const tlsPort = await freePort();
  const plainPort = await freePort();
  let server: StartedServer | null = null;
  try {
    server = await startServer([
      '--app', 'suite:app', '-f', apps, '--processes', '1', '--accept-batch', '4', '--unix-socket', socketPath,
      '--interfaces', `127.0.0.1:${plainPort};127.0.0.1:${tlsPort}:${serverCertificate.key}:${serverCertificate.cert}`,
    ]);
    // Two listening sockets with 4 descriptors each; every other socket (the Unix listener,
    // worker channels) has one.
    assert.deepEqual(descriptorsPerSocket(frontPid(server)).slice(0, 3), [4, 4, 1]);
    // Many at once, so the copies accept some of them; each is served by the listener's own server.
    const plain = await Promise.all(Array.from({ length: 20 }, () => get({ port: plainPort }, '/hello')));
    assert.ok(plain.every((answer) => answer.status === 200 && answer.body === 'Hello, World!'));
    const secure = await Promise.all(Array.from({ length: 20 }, () => get({ port: tlsPort, tls: {} }, '/echo')));
    for (const answer of secure) {
      assert.equal(answer.status, 200);
      assert.equal((JSON.parse(answer.body) as { environ: Record<string, string> }).environ.HTTPS, 'on');
    }
    assert.equal((await get({ socketPath }, '/hello')).status, 200);
    assert.equal(await server.stop(), 0);
    server = await startServer(['--app', 'suite:app', '-f', apps, '--processes', '1', '--accept-batch', '1']);
    assert.equal(descriptorsPerSocket(frontPid(server))[0], 1, '--accept-batch 1: Node\'s one descriptor');
  } finally {
    await server?.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
});

test('--unix-socket alone: no TCP port; a stale socket file left by a killed server is replaced', async () => {
  const scratch = mkdtempSync(join(tmpdir(), 'w2n-unix-'));
  const socketPath = join(scratch, 'app.sock');
  // A socket file nobody listens on, as SIGKILL leaves it (Python's close() does not unlink).
  execFileSync('python3', ['-c', 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.close()', socketPath]);
  assert.ok(statSync(socketPath).isSocket());
  const child = spawn(process.execPath, [binPath, '--app', 'suite:app', '-f', apps, '--processes', '1', '--unix-socket', socketPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
  const exited = once(child, 'exit');
  try {
    while (!/^access log: /m.test(stdout)) {
      if (child.exitCode !== null) throw new Error(`exited early: ${stdout}`);
      await Promise.race([once(child.stdout, 'data'), exited]);
    }
    assert.deepEqual(startingLines({ stdout: () => stdout }), [`unix:${socketPath}`]);
    assert.equal(statSync(socketPath).mode & 0o777, 0o660, 'the default mode');
    const env = await environ({ socketPath });
    assert.equal(env.SERVER_PORT, '8000', 'no TCP listener: -p');
    assert.equal(env.REMOTE_ADDR, '');
    child.kill('SIGTERM');
    const [code] = await exited as [number | null];
    assert.equal(code, 0);
    assert.ok(!existsSync(socketPath));
  } finally {
    child.kill('SIGKILL');
    rmSync(scratch, { recursive: true, force: true });
  }
});

test('--unix-socket on a live server\'s socket, or on a file that is not a socket: exit 2, the file untouched', async () => {
  const scratch = mkdtempSync(join(tmpdir(), 'w2n-unix-'));
  const live = join(scratch, 'live.sock');
  const blocker = await listenOn({ path: live });
  try {
    assertOneLine(await runToExit(['--app', 'hello:app', '-f', apps, '--unix-socket', live]), 'W2N_ERR_LISTEN_IN_USE', /unix:.*live\.sock: address already in use/);
    assert.ok(statSync(live).isSocket(), 'the live server keeps its socket');
    const plainFile = join(scratch, 'data.txt');
    writeFileSync(plainFile, 'keep me');
    assertOneLine(await runToExit(['--app', 'hello:app', '-f', apps, '--unix-socket', plainFile]), 'W2N_ERR_LISTEN_FAILED', /exists and is not a socket/);
    assert.equal(readFileSync(plainFile, 'utf8'), 'keep me');
  } finally {
    blocker.close();
    rmSync(scratch, { recursive: true, force: true });
  }
});

test('a bad --interfaces value: exit 2, one line', async () => {
  assertOneLine(await runToExit(['--interfaces', '127.0.0.1:8000;::1:8001']), 'W2N_ERR_CONFIG_BAD_VALUE', /--interfaces .*an IPv6 address goes in brackets/);
  assertOneLine(await runToExit(['--interfaces', '127.0.0.1:8000:key-only.pem']), 'W2N_ERR_CONFIG_BAD_VALUE', /expected IP:PORT, IP:PORT:KEY:CERT or IP:PORT:KEY:CERT:CA/);
});

test('the second interface\'s port is in use: exit 2 naming it, and the first one is closed again', async () => {
  const blocker = await listenOn({ port: 0, host: '127.0.0.1' });
  const busy = (blocker.address() as { port: number }).port;
  const first = await freePort();
  try {
    const result = await runToExit(['--app', 'hello:app', '-f', apps, '--interfaces', `127.0.0.1:${first};127.0.0.1:${busy}`]);
    assertOneLine(result, 'W2N_ERR_LISTEN_IN_USE', new RegExp(`127\\.0\\.0\\.1:${busy}: address already in use`));
    assert.ok(await isRefused(first), 'nothing listens on the first port');
  } finally {
    blocker.close();
  }
});

test('web2py with --interfaces: one admin password file per port, the same <random> password printed once', async () => {
  const scratch = mkdtempSync(join(tmpdir(), 'w2n-ifpw-'));
  const folder = join(scratch, 'web2py');
  cpSync(join(fixtures, 'web2py'), folder, { recursive: true });
  const server = await startServer(['-f', folder, '-a', '<random>', '--interfaces', '127.0.0.1:0;127.0.0.1:0']);
  try {
    const notices = [...server.stdout().matchAll(/^your admin password is "(\w+)"$/gm)];
    assert.equal(notices.length, 1);
    const password = notices[0]![1]!;
    for (const port of startingLines(server).map(portOf)) {
      const content = readFileSync(join(folder, `parameters_${port}.py`), 'utf8');
      const stored = /^password="(.*)"\n$/.exec(content)![1]!;
      const [, salt, digest] = stored.split('$');
      const computed = execFileSync('python3', ['-c',
        'import hashlib,sys; print(hashlib.pbkdf2_hmac("sha512", sys.argv[1].encode(), sys.argv[2].encode(), 1000, 20).hex())',
        password, salt!], { encoding: 'utf8' }).trim();
      assert.equal(computed, digest, `parameters_${port}.py holds the printed password`);
    }
  } finally {
    assert.equal(await server.stop(), 0);
    rmSync(scratch, { recursive: true, force: true });
  }
});
