/**
 * Worker stdout/stderr relay (src/pool/output-relay.ts): lines are cut at a bound however long
 * the worker's line, and control characters reach the log escaped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { once } from 'node:events';
import { escapeControl, escapeLines } from '../../src/observability/escape.js';
import { parseWorkerEvent, relayLines } from '../../src/pool/output-relay.js';

async function relay(chunks: (string | Buffer)[], maxLineBytes = 16): Promise<string[]> {
  const source = new PassThrough();
  const lines: string[] = [];
  relayLines(source, (line) => lines.push(line), maxLineBytes);
  for (const chunk of chunks) source.write(chunk);
  source.end();
  await once(source, 'end');
  return lines;
}

test('lines split across chunks, CRLF, and a last line without newline', async () => {
  assert.deepEqual(await relay(['ab', 'c\nde', 'f\r\n', '\n', 'tail']), ['abc', 'def', '', 'tail']);
});

test('a line longer than the bound is cut once, marked, and the rest of it dropped', async () => {
  const lines = await relay(['0123456789', '0123456789', 'abc', 'def\nnext\n']);
  assert.deepEqual(lines, ['0123456789012345 … [line cut at 16 bytes]', 'next']);
});

test('megabytes without a newline hold no more than the bound', async () => {
  const big = Buffer.alloc(1024 * 1024, 0x79);
  const lines = await relay([big, big, big, Buffer.from('\nok\n')], 1024);
  assert.equal(lines.length, 2);
  assert.ok(lines[0]!.length < 1100);
  assert.equal(lines[1], 'ok');
});

test('control characters are escaped: no terminal escapes, NUL, CR or bidi overrides reach the log', async () => {
  assert.equal(escapeControl('a\x1b[31mred\x00\r\x7f\x9b\u2028\u202e\tb'), 'a\\x1b[31mred\\x00\\x0d\\x7f\\x9b\\u2028\\u202e\tb');
  assert.deepEqual(await relay(['\x1b[2J\x00forged\n'], 100), ['\\x1b[2J\\x00forged']);
});

test('a traceback keeps its newlines, nothing else', () => {
  assert.equal(escapeLines('line 1\x00\nline 2\r\x1b[A'), 'line 1\\x00\nline 2\\x0d\\x1b[A');
});

test('a worker event line is read as its declared event; anything else stays worker output', () => {
  assert.deepEqual(parseWorkerEvent('w2n-event app.str_body {"charset": "utf-8", "isLastLogged": false, "path": "/a"}'),
    { name: 'app.str_body', fields: { charset: 'utf-8', isLastLogged: false, path: '/a' } });
  for (const line of ['app.str_body {}', 'w2n-event app.str_body', 'w2n-event app.str_body {', 'w2n-event app.str_body [1]',
    'w2n-event app.str_body null', 'w2n-event app.unknown {}', ' w2n-event app.str_body {}', 'Traceback (most recent call last):']) {
    assert.equal(parseWorkerEvent(line), null, line);
  }
});
