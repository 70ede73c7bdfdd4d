/**
 * Response hygiene, byte-exact over raw sockets: a response head that breaks HTTP becomes a clean
 * 500 (logged with why) and never reaches the client; bodies are framed right for HTTP/1.1 and
 * HTTP/1.0 (Content-Length when known, else chunked or close-delimited); HEAD, 204 and 304 carry
 * no body and the next request on the connection is read right; Date always, Server as set.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fixtures, startServer, waitForLog, type StartedServer } from '../helpers/server.js';
import { parseResponses, rawRequest, RawConnection, type ParsedResponse } from '../helpers/raw-http.js';

const apps = join(fixtures, 'apps');

/** One connection, one request at a time: each answer is split off as a client would. */
class Client {
  private used = 0;
  private constructor(readonly connection: RawConnection) {}

  static async open(port: number): Promise<Client> {
    return new Client(await RawConnection.open(port));
  }

  async send(requestHead: string): Promise<ParsedResponse> {
    const method = requestHead.slice(0, requestHead.indexOf(' '));
    this.connection.write(requestHead);
    let parsed: ParsedResponse | undefined;
    await this.connection.readUntil(() => {
      const bytes = Buffer.from(this.connection.text(), 'latin1').subarray(this.used);
      const { responses, rest } = parseResponses(bytes, [method], this.connection.closed);
      if (responses.length === 0) return false;
      parsed = responses[0];
      this.used += bytes.length - rest.length;
      return true;
    });
    if (parsed === undefined) throw new Error(`no whole answer to ${requestHead.split('\r\n')[0]}: ${JSON.stringify(this.connection.text().slice(this.used, this.used + 300))}`);
    return parsed;
  }

  /** Bytes received after the last whole answer. */
  leftover(): string {
    return this.connection.text().slice(this.used);
  }

  close(): void {
    this.connection.destroy();
  }
}

function get(path: string, extra = ''): string {
  return `GET ${path} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`;
}

describe('with the default Server header', () => {
  let server: StartedServer;
  before(async () => {
    server = await startServer(['--app', 'suite:app', '-f', apps, '--processes', '1', '--log-format', 'json']);
  });
  after(async () => {
    await server.stop();
  });

  test('a head that breaks HTTP: 500 with the reason logged, nothing of it sent, the connection still good', async () => {
    const kinds: [string, string][] = [
      ['crlf', 'control character'], ['lf', 'control character'], ['cr', 'control character'], ['nul', 'control character'],
      ['name', 'not an HTTP token'], ['colon', 'not an HTTP token'], ['empty', 'not an HTTP token'],
      // Issue 14: the line names the header and its value, as gevent's does.
      ['euro', "header 'X-Price': value '10 \u20ac' is not a latin-1 string"], ['hop', 'hop-by-hop'], ['bytes', 'must be str'],
      ['status', 'NNN reason'], ['twice', 'second time'], ['info', '1xx status'],
    ];
    const client = await Client.open(server.port);
    try {
      for (const [kind, reason] of kinds) {
        const pattern = new RegExp(`"event":"request\\.(failed|bad_response)".*${reason}`);
        const loggedBefore = server.stderr().split('\n').filter((line) => pattern.test(line)).length;
        const answer = await client.send(get(`/badheaders?kind=${kind}`));
        assert.equal(answer.status, 500, kind);
        assert.equal(answer.body.toString(), 'Internal Server Error\n', kind);
        // The request id is a random UUID (hex: it may spell "bad"), so it is left out of the check.
        assert.doesNotMatch(answer.head.replace(/^X-Request-ID: .*$/im, ''), /evil|X-Injected|X-Nul|Bad|X-Price|X-Bytes|Early/i, kind);
        await waitForLog(server, pattern, { times: loggedBefore + 1 });
      }
      const after = await client.send(get('/hello'));
      assert.equal(after.status, 200);
      assert.equal(after.body.toString(), 'Hello, World!');
    } finally {
      client.close();
    }
  });

  test('a latin-1 header value goes out as its one byte', async () => {
    const { response } = await rawRequest(server.port, get('/badheaders?kind=latin1', 'Connection: close\r\n'));
    assert.match(response, /^HTTP\/1\.1 200 /);
    assert.ok(response.includes('\r\nX-Name: caf\u00e9\r\n'), 'é as the byte 0xE9');
  });

  test('HTTP/1.1 framing: Content-Length when the length is known, chunked when not, all on one connection', async () => {
    const client = await Client.open(server.port);
    try {
      const cases: [string, 'length' | 'chunked', number][] = [
        ['/framing/list?n=5', 'length', 5],
        ['/framing/list?n=300000&parts=3', 'length', 300_000],
        ['/framing/gen?n=300000', 'chunked', 300_000],
        ['/framing/gen?n=300000&cl=1', 'length', 300_000],
        ['/framing/write?n=1000', 'chunked', 1000],
        ['/framing/empty', 'length', 0],
      ];
      for (const [path, framing, size] of cases) {
        const answer = await client.send(get(path));
        assert.equal(answer.status, 200, path);
        assert.equal(answer.body.length, size, path);
        if (framing === 'length') {
          assert.deepEqual(answer.headers.get('content-length'), [String(size)], path);
          assert.equal(answer.headers.get('transfer-encoding'), undefined, path);
        } else {
          assert.deepEqual(answer.headers.get('transfer-encoding'), ['chunked'], path);
          assert.equal(answer.headers.get('content-length'), undefined, path);
        }
        assert.deepEqual(answer.headers.get('connection'), ['keep-alive'], path);
      }
      assert.equal(client.leftover(), '');
    } finally {
      client.close();
    }
  });

  test('HTTP/1.0 framing: an unknown length is delimited by the close; a known one keeps the connection', async () => {
    const streamed = await rawRequest(server.port, 'GET /framing/gen?n=100000 HTTP/1.0\r\n\r\n');
    const { responses } = parseResponses(Buffer.from(streamed.response, 'latin1'), ['GET']);
    assert.equal(responses[0]!.status, 200);
    assert.equal(responses[0]!.headers.get('content-length'), undefined);
    assert.equal(responses[0]!.headers.get('transfer-encoding'), undefined, 'HTTP/1.0 knows no chunked');
    assert.deepEqual(responses[0]!.headers.get('connection'), ['close']);
    assert.equal(responses[0]!.body.length, 100_000);
    assert.ok(streamed.closedByServer);

    const client = await Client.open(server.port);
    try {
      const known = await client.send('GET /framing/list?n=300000&parts=3 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
      assert.deepEqual(known.headers.get('content-length'), ['300000']);
      assert.deepEqual(known.headers.get('connection'), ['keep-alive']);
      assert.equal(known.body.length, 300_000);
      const next = await client.send('GET /hello HTTP/1.0\r\n\r\n');
      assert.equal(next.body.toString(), 'Hello, World!');
    } finally {
      client.close();
    }
  });

  test('HEAD: no body bytes, whatever the app wrote; its Content-Length kept; the next request read right', async () => {
    const client = await Client.open(server.port);
    try {
      const cases: [string, string | undefined][] = [
        ['/hello', '13'],
        ['/framing/list?n=300000&parts=3', '300000'],
        ['/framing/gen?n=1000&cl=1', '1000'],
        ['/framing/gen?n=300000', undefined],
        ['/framing/write?n=1000', undefined],
        ['/framing/empty', undefined],
      ];
      for (const [path, length] of cases) {
        const answer = await client.send(`HEAD ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
        assert.equal(answer.status, 200, path);
        assert.deepEqual(answer.headers.get('content-length'), length === undefined ? undefined : [length], path);
        // The next request's answer must start right after this head: no body bytes in between.
        const next = await client.send(get('/hello'));
        assert.equal(next.status, 200, `after HEAD ${path}`);
        assert.equal(next.body.toString(), 'Hello, World!', `after HEAD ${path}`);
      }
      assert.equal(client.leftover(), '');
    } finally {
      client.close();
    }
  });

  test('204 and 304 carry no body (and 204 no Content-Length); the next request is read right', async () => {
    const client = await Client.open(server.port);
    try {
      const noContent = await client.send(get('/framing/status?code=204&n=5&cl=1'));
      assert.equal(noContent.status, 204);
      assert.equal(noContent.headers.get('content-length'), undefined, 'RFC 9110 §8.6: never in a 204');
      assert.equal(noContent.headers.get('transfer-encoding'), undefined);
      assert.equal((await client.send(get('/hello'))).body.toString(), 'Hello, World!');
      const notModified = await client.send(get('/framing/status?code=304&n=5&cl=1'));
      assert.equal(notModified.status, 304);
      assert.equal(notModified.headers.get('transfer-encoding'), undefined);
      assert.equal((await client.send(get('/hello'))).body.toString(), 'Hello, World!');
      assert.equal(client.leftover(), '');
    } finally {
      client.close();
    }
  });

  test('Date on every answer; one Server header, the app\'s own when it sets one', async () => {
    const client = await Client.open(server.port);
    try {
      const answers = new Map<string, ParsedResponse>([
        ['app', await client.send(get('/hello'))],
        ['app 500', await client.send(get('/badheaders?kind=crlf'))],
        ['app 404', await client.send(get('/no-such-app'))],
        ['health', await client.send(get('/health'))],
      ]);
      const own = await client.send(get('/badheaders?kind=server'));
      assert.deepEqual(own.headers.get('server'), ['my-app/1.0'], 'the app\'s, alone');
      const refused = await rawRequest(server.port, 'garbage\r\n\r\n');
      answers.set('refused', parseResponses(Buffer.from(refused.response, 'latin1'), ['GET']).responses[0]!);
      for (const [name, answer] of [...answers, ['own', own] as const]) {
        assert.equal(answer.headers.get('date')?.length, 1, `${name}: one Date`);
        assert.ok(!Number.isNaN(Date.parse(answer.headers.get('date')![0]!)), `${name}: an HTTP date`);
        if (name !== 'own') assert.deepEqual(answer.headers.get('server'), ['web2py-on-node'], name);
      }
    } finally {
      client.close();
    }
  });
});

describe('--server-header off', () => {
  let server: StartedServer;
  before(async () => {
    server = await startServer(['--app', 'suite:app', '-f', apps, '--processes', '1', '--server-header', 'off']);
  });
  after(async () => {
    await server.stop();
  });

  test('no Server header from the front; the app\'s own still goes out', async () => {
    const client = await Client.open(server.port);
    try {
      for (const path of ['/hello', '/health', '/badheaders?kind=crlf']) {
        const answer = await client.send(get(path));
        assert.equal(answer.headers.get('server'), undefined, path);
        assert.equal(answer.headers.get('date')?.length, 1, path);
      }
      assert.deepEqual((await client.send(get('/badheaders?kind=server'))).headers.get('server'), ['my-app/1.0']);
    } finally {
      client.close();
    }
    const refused = await rawRequest(server.port, 'garbage\r\n\r\n');
    assert.match(refused.response, /^HTTP\/1\.1 400 /);
    assert.doesNotMatch(refused.response, /\r\nServer:/i);
  });
});
