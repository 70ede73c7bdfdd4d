/** The head rules llhttp does not enforce (front/request-checks.ts), with plain values. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkHttpVersion, checkRequestHead, isRequestLineOverflow, type RequestHead } from '../../src/front/request-checks.js';

const limits = { maxRequestLine: 100, maxHeaders: 4 };

function head(overrides: Partial<RequestHead> = {}): RequestHead {
  return { method: 'GET', url: '/', httpVersionMajor: 1, httpVersionMinor: 1, rawHeaders: ['Host', 'x'], ...overrides };
}

test('an ordinary head passes', () => {
  assert.equal(checkRequestHead(head(), limits), null);
  assert.equal(checkRequestHead(head({ httpVersionMinor: 0, rawHeaders: [] }), limits), null, 'HTTP/1.0 needs no Host');
  assert.equal(checkRequestHead(head({ rawHeaders: ['HOST', 'x', 'Transfer-Encoding', 'Chunked'] }), limits), null);
});

test('request line: exactly the limit passes, one byte more is 414', () => {
  // "GET " + url + " HTTP/1.1" = 4 + url + 9
  const atLimit = head({ url: `/${'a'.repeat(100 - 13 - 1)}` });
  assert.equal(checkRequestHead(atLimit, limits), null);
  const over = head({ url: `/${'a'.repeat(100 - 13)}` });
  assert.deepEqual(checkRequestHead(over, limits), { code: 'W2N_ERR_CLIENT_URI_TOO_LONG', details: { limit: 100 } });
});

test('header count: the limit passes, one more is 431', () => {
  const four = ['Host', 'x', 'A', '1', 'B', '2', 'C', '3'];
  assert.equal(checkRequestHead(head({ rawHeaders: four }), limits), null);
  assert.deepEqual(checkRequestHead(head({ rawHeaders: [...four, 'D', '4'] }), limits),
    { code: 'W2N_ERR_CLIENT_TOO_MANY_HEADERS', details: { count: 5, limit: 4 } });
});

test('Host: missing in HTTP/1.1 or repeated in any version is 400', () => {
  assert.equal(checkRequestHead(head({ rawHeaders: [] }), limits)?.code, 'W2N_ERR_CLIENT_BAD_REQUEST');
  assert.equal(checkRequestHead(head({ rawHeaders: ['Host', 'a', 'host', 'a'] }), limits)?.code, 'W2N_ERR_CLIENT_BAD_REQUEST');
  assert.equal(checkRequestHead(head({ httpVersionMinor: 0, rawHeaders: ['Host', 'a', 'Host', 'b'] }), limits)?.code, 'W2N_ERR_CLIENT_BAD_REQUEST');
});

test('Transfer-Encoding: in HTTP/1.0 or not ending in chunked is 400; a coding before chunked is 501', () => {
  assert.equal(checkRequestHead(head({ rawHeaders: ['Host', 'x', 'Transfer-Encoding', 'gzip'] }), limits)?.code, 'W2N_ERR_CLIENT_BAD_REQUEST');
  assert.equal(checkRequestHead(head({ rawHeaders: ['Host', 'x', 'Transfer-Encoding', 'chunked, gzip'] }), limits)?.code, 'W2N_ERR_CLIENT_BAD_REQUEST');
  assert.equal(checkRequestHead(head({ httpVersionMinor: 0, rawHeaders: ['Transfer-Encoding', 'chunked'] }), limits)?.code, 'W2N_ERR_CLIENT_BAD_REQUEST');
  assert.deepEqual(checkRequestHead(head({ rawHeaders: ['Host', 'x', 'Transfer-Encoding', 'gzip, chunked'] }), limits),
    { code: 'W2N_ERR_CLIENT_TRANSFER_CODING', details: { coding: 'gzip, chunked' } });
  assert.equal(checkRequestHead(head({ rawHeaders: ['Host', 'x', 'Transfer-Encoding', 'gzip', 'Transfer-Encoding', 'chunked'] }), limits)?.code,
    'W2N_ERR_CLIENT_TRANSFER_CODING', 'split over two fields');
});

test('head overflow: the request line or the headers, from where llhttp stopped', () => {
  const longUrl = Buffer.from(`GET /${'a'.repeat(50)} HTTP/1.1\r\nHost: x\r\n\r\n`, 'latin1');
  assert.equal(isRequestLineOverflow(longUrl, 55), true, 'stopped at the space after the URL');
  const urlTail = Buffer.from(`${'a'.repeat(30)} HTTP/1.1\r\n`, 'latin1');
  assert.equal(isRequestLineOverflow(urlTail, 30), true, 'the URL went on from an earlier chunk');
  const urlStart = Buffer.from(`GET /${'a'.repeat(60)}`, 'latin1');
  assert.equal(isRequestLineOverflow(urlStart, urlStart.length), true, 'cut at the end of the first chunk');
  const pipelined = Buffer.from(`x\r\n\r\nGET /${'a'.repeat(60)}`, 'latin1');
  assert.equal(isRequestLineOverflow(pipelined, pipelined.length), true, 'after an earlier request in the chunk');
  const bigHeader = Buffer.from(`GET / HTTP/1.1\r\nX-Big: ${'a'.repeat(60)}\r\n\r\n`, 'latin1');
  assert.equal(isRequestLineOverflow(bigHeader, bigHeader.indexOf('\r\n\r\n') + 1), false);
  const valueTail = Buffer.from(`${'a'.repeat(30)} b c\r\n\r\n`, 'latin1');
  assert.equal(isRequestLineOverflow(valueTail, 35), false, 'a value with spaces ends at CR');
  assert.equal(isRequestLineOverflow(undefined, undefined), false);
});

test('HTTP version: 1.0 and 1.1 on an HTTP/1.x connection, 2.0 only on an HTTP/2 stream; anything else 505', () => {
  assert.equal(checkHttpVersion(1, 1, false), null);
  assert.equal(checkHttpVersion(1, 0, false), null);
  assert.equal(checkHttpVersion(2, 0, true), null);
  for (const [major, minor] of [[2, 0], [0, 9], [3, 0], [1, 2]] as const) {
    assert.deepEqual(checkHttpVersion(major, minor, false), { code: 'W2N_ERR_CLIENT_HTTP_VERSION', details: { version: `${major}.${minor}` } });
  }
  assert.equal(checkHttpVersion(1, 1, true)?.code, 'W2N_ERR_CLIENT_HTTP_VERSION', 'an HTTP/2 stream is 2.0');
});
