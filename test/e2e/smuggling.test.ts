/**
 * Request smuggling: a request whose framing is ambiguous is refused (400, or 501 for a coding the
 * front cannot decode), the connection is closed, and a second request hidden behind it in the
 * same bytes is never answered and never reaches the application (the `hits` fixture counts every
 * request that does). Each refusal is logged exactly once.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fixtures, startServer, type StartedServer } from '../helpers/server.js';
import { parseResponses, rawRequest } from '../helpers/raw-http.js';

const apps = join(fixtures, 'apps');
let server: StartedServer;

before(async () => {
  server = await startServer(['--app', 'suite:app', '-f', apps, '--processes', '1', '--log-level', 'debug', '--log-format', 'json']);
});
after(async () => {
  await server.stop();
});

function refusalsLogged(): number {
  return server.stderr().split('\n').filter((line) => line.includes('"event":"client.error"')).length;
}

const H = 'Host: x\r\n';
/** [name, bytes of the ambiguous request, expected status] */
const cases: [string, string, number][] = [
  ['Content-Length with Transfer-Encoding', `POST /upload HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  ['Transfer-Encoding with Content-Length', `POST /upload HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n`, 400],
  ['two differing Content-Length', `POST /upload HTTP/1.1\r\n${H}Content-Length: 1\r\nContent-Length: 2\r\n\r\nab`, 400],
  ['two equal Content-Length', `POST /upload HTTP/1.1\r\n${H}Content-Length: 0\r\nContent-Length: 0\r\n\r\n`, 400],
  ['Content-Length list', `POST /upload HTTP/1.1\r\n${H}Content-Length: 1, 1\r\n\r\na`, 400],
  ['signed Content-Length', `POST /upload HTTP/1.1\r\n${H}Content-Length: +1\r\n\r\na`, 400],
  ['chunk size not hex', `POST /upload HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\n`, 400],
  ['negative chunk size', `POST /upload HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n-1\r\na\r\n0\r\n\r\n`, 400],
  ['chunk size overflow', `POST /upload HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\na\r\n0\r\n\r\n`, 400],
  ['chunk size with a space', `POST /upload HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1 \r\na\r\n0\r\n\r\n`, 400],
  ['obs-fold', `GET /echo HTTP/1.1\r\n${H}X-Folded: a\r\n b\r\n\r\n`, 400],
  ['bare LF ending the request line', `GET /echo HTTP/1.1\n${H}\r\n`, 400],
  ['bare LF ending a header', `GET /echo HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n`, 400],
  ['bare CR in a header', `GET /echo HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n`, 400],
  ['space before the colon', `POST /upload HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n`, 400],
  ['Transfer-Encoding not ending in chunked', `POST /upload HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\nab`, 400],
  ['chunked, then another coding', `POST /upload HTTP/1.1\r\n${H}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n`, 400],
  ['chunked in two fields, then another', `POST /upload HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n`, 400],
  ['a look-alike coding', `POST /upload HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`, 400],
  ['Transfer-Encoding in HTTP/1.0', 'POST /upload HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
  ['HTTP/1.1 without Host', 'GET /echo HTTP/1.1\r\n\r\n', 400],
  ['two Host headers', 'GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400],
  ['two equal Host headers', 'GET /echo HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n', 400],
  ['a coding the front cannot decode', `POST /upload HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`, 501],
];

for (const [name, bytes, status] of cases) {
  test(`${name}: ${status}, closed, the request behind it never served`, async () => {
    const key = name.replace(/\W+/g, '-');
    const logged = refusalsLogged();
    const { response, closedByServer } = await rawRequest(server.port, `${bytes}GET /hits/${key} HTTP/1.1\r\nHost: x\r\n\r\n`);
    const { responses, rest } = parseResponses(Buffer.from(response, 'latin1'), ['FIRST', 'SECOND']);
    assert.equal(responses.length, 1, `one answer only: ${JSON.stringify(response)}`);
    assert.equal(responses[0]!.status, status);
    assert.deepEqual(responses[0]!.headers.get('connection'), ['close']);
    assert.equal(rest.length, 0, 'nothing after the answer');
    assert.ok(closedByServer, 'the server closed the connection');
    const peek = await rawRequest(server.port, `GET /hits/${key}/peek HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.match(peek.response, /\r\n\r\n0$/, 'the hidden request never reached the application');
    assert.equal(refusalsLogged(), logged + 1, 'logged once');
  });
}

test('the same hidden request after a good one is served (the check above can see it)', async () => {
  const { response } = await rawRequest(server.port, `GET /hello HTTP/1.1\r\n${H}\r\nGET /hits/control HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  const { responses } = parseResponses(Buffer.from(response, 'latin1'), ['GET', 'GET']);
  assert.deepEqual(responses.map((r) => r.status), [200, 200]);
  assert.equal(responses[1]!.body.toString(), '1');
});
