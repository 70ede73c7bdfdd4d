/**
 * Limits on the request head and on connections, each finite, each answered with its status and
 * a closed connection, each refusal logged once: request line (414), head size and header count
 * (431), slow heads and slow bodies (408), idle keep-alive, and --max-connections (503).
 * Deadlines are set to 1–2 s and given several seconds: what is tested is that the connection is
 * cut, not how fast.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fixtures, startServer, type StartedServer } from '../helpers/server.js';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { rawRequest, RawConnection } from '../helpers/raw-http.js';
import { makeCertificate } from '../helpers/tls.js';
import { httpGet } from '../helpers/http-get.js';
import { pollPause, waitUntil } from '../helpers/waits.js';

const apps = join(fixtures, 'apps');

/** `client.error` lines of the JSON server log with this code. */
function refusalsLogged(server: StartedServer, code: string): number {
  return server.stderr().split('\n').filter((line) => line.includes('"event":"client.error"') && line.includes(`"code":"${code}"`)).length;
}

/** Writes `bytes` one at a time every `everyMs` until the server closes the connection or `bytes` run out. */
function trickle(connection: RawConnection, bytes: string, everyMs: number): () => void {
  let index = 0;
  const timer = setInterval(() => {
    if (connection.closed || index >= bytes.length) clearInterval(timer);
    else connection.write(bytes[index++]!);
  }, everyMs);
  return () => clearInterval(timer);
}

describe('head limits and deadlines', () => {
  let server: StartedServer;
  before(async () => {
    server = await startServer(['--app', 'suite:app', '-f', apps, '--processes', '1',
      '--max-request-line', '1k', '--max-header-size', '4k', '--max-headers', '20',
      '--headers-timeout', '1', '--request-timeout', '2', '--keep-alive-timeout', '1',
      '--log-level', 'debug', '--log-format', 'json']);
  });
  after(async () => {
    await server.stop();
  });

  test('request line: up to --max-request-line is served; longer gets 414 and a close, logged once', async () => {
    // "GET " + target + " HTTP/1.1" is 13 bytes more than the target.
    const fits = `/hello?${'a'.repeat(1024 - 13 - 7)}`;
    const ok = await rawRequest(server.port, `GET ${fits} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.match(ok.response, /^HTTP\/1\.1 200 /);
    const tooLong = `/hello?${'a'.repeat(1024 - 13 - 6)}`;
    const refused = await rawRequest(server.port, `GET ${tooLong} HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.match(refused.response, /^HTTP\/1\.1 414 URI Too Long\r\n/);
    assert.match(refused.response, /\r\nConnection: close\r\n/);
    assert.ok(refused.closedByServer);
    assert.equal(refusalsLogged(server, 'W2N_ERR_CLIENT_URI_TOO_LONG'), 1);
  });

  test('a request line longer than the whole head limit is still 414, not 431', async () => {
    const refused = await rawRequest(server.port, `GET /hello?${'a'.repeat(6000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.match(refused.response, /^HTTP\/1\.1 414 /);
    assert.ok(refused.closedByServer);
  });

  test('head larger than --max-header-size: 431 and a close, logged once', async () => {
    const before = refusalsLogged(server, 'W2N_ERR_CLIENT_HEADERS_TOO_LARGE');
    const refused = await rawRequest(server.port, `GET /hello HTTP/1.1\r\nHost: x\r\nCookie: ${'a'.repeat(5000)}\r\n\r\n`);
    assert.match(refused.response, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
    assert.match(refused.response, /\r\nConnection: close\r\n/);
    assert.ok(refused.closedByServer);
    assert.equal(refusalsLogged(server, 'W2N_ERR_CLIENT_HEADERS_TOO_LARGE'), before + 1);
  });

  test('header count: --max-headers fields all reach the app; one more gets 431, never a silent drop', async () => {
    const fields = (n: number): string => Array.from({ length: n }, (_, i) => `X-H${i}: v${i}\r\n`).join('');
    // Host + Connection + 18 = 20 fields: the limit.
    const served = await rawRequest(server.port, `GET /echo HTTP/1.1\r\nHost: x\r\n${fields(18)}Connection: close\r\n\r\n`);
    assert.match(served.response, /^HTTP\/1\.1 200 /);
    const environ = (JSON.parse(served.response.slice(served.response.indexOf('\r\n\r\n') + 4)) as { environ: Record<string, string> }).environ;
    for (let i = 0; i < 18; i += 1) assert.equal(environ[`HTTP_X_H${i}`], `v${i}`);
    const before = refusalsLogged(server, 'W2N_ERR_CLIENT_TOO_MANY_HEADERS');
    const refused = await rawRequest(server.port, `GET /echo HTTP/1.1\r\nHost: x\r\n${fields(19)}Connection: close\r\n\r\n`);
    assert.match(refused.response, /^HTTP\/1\.1 431 /);
    assert.match(refused.response, /21 request headers, more than 20/);
    assert.ok(refused.closedByServer);
    assert.equal(refusalsLogged(server, 'W2N_ERR_CLIENT_TOO_MANY_HEADERS'), before + 1);
  });

  test('slowloris: a head trickled a byte at a time is cut at --headers-timeout with 408', async () => {
    const before = refusalsLogged(server, 'W2N_ERR_CLIENT_TIMEOUT');
    const connection = await RawConnection.open(server.port);
    connection.write('GET /hello HTTP/1.1\r\nHost: x\r\n');
    const stop = trickle(connection, `X-Slow: ${'a'.repeat(200)}\r\n\r\n`, 250); // 50 s of head at this pace
    try {
      assert.ok(await connection.closedWithin(6_000), 'closed by the server');
      assert.match(connection.text(), /^HTTP\/1\.1 408 Request Timeout\r\n/);
      assert.match(connection.text(), /\r\nConnection: close\r\n/);
      assert.ok(connection.text().endsWith('\r\n\r\nRequest Timeout: the request did not arrive in time\n'), 'no Node internals in the body');
    } finally {
      stop();
      connection.destroy();
    }
    assert.equal(refusalsLogged(server, 'W2N_ERR_CLIENT_TIMEOUT'), before + 1);
  });

  test('a body trickled after a quick head is cut at --request-timeout with 408', async () => {
    const connection = await RawConnection.open(server.port);
    connection.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n');
    const stop = trickle(connection, 'b'.repeat(1000), 250);
    try {
      assert.ok(await connection.closedWithin(8_000), 'closed by the server');
      assert.match(connection.text(), /^HTTP\/1\.1 408 /);
    } finally {
      stop();
      connection.destroy();
    }
    // The application's thread was released: the server answers at once.
    assert.equal((await httpGet(server.port, '/hello')).status, 200);
  });

  test('an idle keep-alive connection is closed after --keep-alive-timeout', async () => {
    const connection = await RawConnection.open(server.port);
    try {
      connection.write('GET /hello HTTP/1.1\r\nHost: x\r\n\r\n');
      const answer = await connection.readUntil((text) => text.endsWith('Hello, World!'));
      assert.match(answer, /\r\nKeep-Alive: timeout=1\r\n/);
      assert.equal(connection.closed, false, 'kept alive after the answer');
      assert.ok(await connection.closedWithin(6_000), 'idle connection closed');
    } finally {
      connection.destroy();
    }
  });
});

describe('--max-connections', () => {
  let server: StartedServer;
  before(async () => {
    server = await startServer(['--app', 'suite:app', '-f', apps, '--processes', '1', '--max-connections', '3',
      '--log-level', 'debug', '--log-format', 'json']);
  });
  after(async () => {
    await server.stop();
  });

  test('past the limit: 503 with Retry-After and a close, never the app; after one leaves, a new one is served', async () => {
    const held: RawConnection[] = [];
    try {
      for (let i = 0; i < 3; i += 1) {
        const connection = await RawConnection.open(server.port);
        connection.write('GET /hits/held HTTP/1.1\r\nHost: x\r\n\r\n');
        await connection.readUntil((text) => /\r\n\r\n\d+$/.test(text));
        held.push(connection);
      }
      const fourth = await RawConnection.open(server.port);
      fourth.write('GET /hits/fourth HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.ok(await fourth.closedWithin(5_000), 'the fourth is closed');
      assert.match(fourth.text(), /^HTTP\/1\.1 503 Service Unavailable\r\n/);
      assert.match(fourth.text(), /\r\nRetry-After: 1\r\n/);
      assert.match(fourth.text(), /\r\nConnection: close\r\n/);
      fourth.destroy();
      for (const connection of held) assert.equal(connection.closed, false, 'the admitted ones are untouched');

      held.shift()!.destroy();
      // The server sees the close a moment later; until then a newcomer may still be refused.
      const deadline = Date.now() + 5_000;
      let answer = await rawRequest(server.port, 'GET /hits/fourth HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      while (!answer.response.startsWith('HTTP/1.1 200') && Date.now() < deadline) {
        await pollPause(50);
        answer = await rawRequest(server.port, 'GET /hits/fourth HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      }
      assert.match(answer.response, /^HTTP\/1\.1 200 /);
      // Only the served request reached the application; the refused ones never did.
      assert.match(answer.response, /\r\n\r\n1$/);
    } finally {
      for (const connection of held) connection.destroy();
    }
    assert.ok(refusalsLogged(server, 'W2N_ERR_TOO_MANY_CONNECTIONS') >= 1);
    assert.match(server.stderr(), /"event":"connections\.full"/);
    const metrics = (await httpGet(server.port, '/metrics')).body.toString('latin1');
    assert.match(metrics, /^w2n_client_rejections_total\{reason="too_many_connections"\} [1-9]/m);
    assert.match(metrics, /^w2n_connections_open [1-3]$/m);
  });
});

test('--max-connections over TLS: the refusal is readable inside TLS', async () => {
  const { cert, key } = makeCertificate();
  const server = await startServer(['--app', 'suite:app', '-f', apps, '--processes', '1', '--max-connections', '1', '-c', cert, '-k', key],
    { scheme: 'https' });
  const open = (): Promise<{ socket: TLSSocket; text: () => string; closed: Promise<void> }> => new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: server.port, rejectUnauthorized: false }, () => {
      let text = '';
      socket.on('data', (c: Buffer) => { text += c.toString('latin1'); });
      resolve({ socket, text: () => text, closed: new Promise((r) => socket.once('close', () => r())) });
    });
    socket.once('error', reject);
  });
  try {
    const held = await open();
    held.socket.write('GET /hello HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitUntil('the first answer', () => held.text().endsWith('Hello, World!'), 5_000);
    assert.ok(held.text().endsWith('Hello, World!'), 'the first connection is served');
    const refused = await open();
    refused.socket.on('error', () => {});
    refused.socket.write('GET /hello HTTP/1.1\r\nHost: x\r\n\r\n');
    await refused.closed;
    assert.match(refused.text(), /^HTTP\/1\.1 503 Service Unavailable\r\n/);
    held.socket.destroy();
  } finally {
    await server.stop();
  }
});

test('TLS: idle TCP connections (no handshake) count against --max-connections from their accept and are cut after --headers-timeout', async () => {
  const { cert, key } = makeCertificate();
  const server = await startServer(['--app', 'suite:app', '-f', apps, '--processes', '1', '--max-connections', '3', '--headers-timeout', '1',
    '-c', cert, '-k', key, '--log-level', 'debug', '--log-format', 'json'], { scheme: 'https' });
  const idle: RawConnection[] = [];
  const tlsExchange = (bytes: string): Promise<string> => new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: server.port, rejectUnauthorized: false }, () => socket.write(bytes));
    let text = '';
    socket.on('data', (c: Buffer) => { text += c.toString('latin1'); });
    socket.once('close', () => resolve(text));
    socket.once('error', reject);
  });
  try {
    // Three TCP connections that never start TLS: they hold every slot.
    for (let i = 0; i < 3; i += 1) idle.push(await RawConnection.open(server.port));
    const refused = await tlsExchange('GET /hello HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match(refused, /^HTTP\/1\.1 503 Service Unavailable\r\n/, 'the fourth is refused: the idle ones are counted');
    // --headers-timeout from the accept: each idle one is cut.
    const startedAt = Date.now();
    for (const connection of idle) assert.ok(await connection.closedWithin(5_000), 'an idle TCP connection is cut');
    assert.ok(Date.now() - startedAt < 5_000);
    assert.ok(refusalsLogged(server, 'W2N_ERR_CLIENT_TIMEOUT') >= 3);
    // Slots free again: served.
    assert.match(await tlsExchange('GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 200 OK\r\n/);
  } finally {
    for (const connection of idle) connection.destroy();
    await server.stop();
  }
});
