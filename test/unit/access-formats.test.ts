/** @module The `combined` and `json` access lines: their fields, and no forging through what a client sends. */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  ACCESS_LOG_FORMATS, accessLineFormatter, escapeNginx, formatClfTime, formatCombinedLine, formatJsonLine, jsonAscii,
  type RequestAccessEntry,
} from '../../src/observability/access-formats.js';
import { ATOMIC_PIPE_WRITE_BYTES } from '../../src/observability/access-log.js';
import { isWellFormedRequestId } from '../../src/front/request-id.js';

function withTimeZone(tz: string, run: () => void): void {
  const saved = process.env['TZ'];
  process.env['TZ'] = tz;
  try {
    run();
  } finally {
    if (saved === undefined) delete process.env['TZ'];
    else process.env['TZ'] = saved;
  }
}

const BASE: RequestAccessEntry = {
  remoteAddr: '203.0.113.9', time: new Date(Date.UTC(2024, 5, 10, 12, 3, 7, 250)), method: 'GET', pathInfo: '/a b',
  protocol: 'HTTP/1.1', status: 200, seconds: 0.0123456, target: '/a%20b?x=1', bodyBytes: 512,
  referer: 'https://example.com/', userAgent: 'curl/8.0', requestId: 'abc-123',
};

/** Header values and targets a hostile client can send (Node reads heads as latin-1: one char per byte). */
const HOSTILE = [
  'quote " here', 'back\\slash', 'end \\', '"', 'CR\rLF\nline', 'NUL\0byte', 'tab\tand\x1b[31mescape', 'DEL\x7f',
  'latin1 \xe9 \xff', 'utf8 bytes \xc3\xa9', 'C1 \x85 \x9b', 'wide \u2028\u2029\u00e9\u4e2d', 'lone \ud800 surrogate \udc00',
  `" 200 1 "-" "forged`, '\\x22 looks escaped', 'x'.repeat(20_000), '\n'.repeat(5000), '"\\'.repeat(3000), '\xff'.repeat(5000),
];

describe('combined format', () => {
  it('is nginx\'s combined line, then the duration in seconds and the request id', () => {
    withTimeZone('Europe/Paris', () => {
      assert.equal(formatCombinedLine(BASE),
        '203.0.113.9 - - [10/Jun/2024:14:03:07 +0200] "GET /a%20b?x=1 HTTP/1.1" 200 512 "https://example.com/" "curl/8.0" 0.012346 "abc-123"\n');
    });
  });

  it('writes `-` for what is absent: no Referer, no User-Agent, no address (a Unix socket peer)', () => {
    withTimeZone('UTC', () => {
      assert.equal(formatCombinedLine({ ...BASE, remoteAddr: '', referer: undefined, userAgent: undefined }),
        '- - - [10/Jun/2024:12:03:07 +0000] "GET /a%20b?x=1 HTTP/1.1" 200 512 "-" "-" 0.012346 "abc-123"\n');
    });
  });

  it('CLF time has the local offset, negative and half-hour ones too', () => {
    const time = new Date(Date.UTC(2024, 0, 1, 0, 30, 0));
    withTimeZone('America/St_Johns', () => assert.equal(formatClfTime(time), '31/Dec/2023:21:00:00 -0330'));
    withTimeZone('Asia/Kolkata', () => assert.equal(formatClfTime(time), '01/Jan/2024:06:00:00 +0530'));
  });

  it('escapes as nginx: `"`, `\\`, controls and bytes above 0x7E as \\xHH; chars above 0xFF as their UTF-8 bytes', () => {
    assert.equal(escapeNginx('a"b\\c\r\n\0\x7f\xe9 ok', Infinity), 'a\\x22b\\x5Cc\\x0D\\x0A\\x00\\x7F\\xE9 ok');
    assert.equal(escapeNginx('\u4e2d', Infinity), '\\xE4\\xB8\\xAD');
  });

  for (const value of HOSTILE) {
    it(`a hostile value cannot forge a field or a line: ${JSON.stringify(value.slice(0, 40))}`, () => {
      const line = formatCombinedLine({ ...BASE, target: value, referer: value, userAgent: value, method: value.slice(0, 50) });
      assert.ok(line.endsWith('\n') && line.indexOf('\n') === line.length - 1, 'one line');
      assert.match(line, /^[\x20-\x7e]*\n$/, 'printable ASCII only');
      assert.ok(Buffer.byteLength(line) <= ATOMIC_PIPE_WRITE_BYTES, `fits one atomic write (${line.length})`);
      // Every quoted field is closed where the format closes it: exactly 8 unescaped quotes.
      assert.equal(line.match(/"/g)?.length, 8);
      const fields = /^(\S+) - - \[[^\]]+\] "([^"]*)" (\d+) (\d+) "([^"]*)" "([^"]*)" ([\d.]+) "([^"]*)"\n$/.exec(line);
      assert.ok(fields !== null, line.slice(0, 300));
      assert.equal(fields[3], '200');
      assert.equal(fields[8], 'abc-123');
    });
  }
});

describe('json format', () => {
  it('has every field, typed: strings, numbers, null for an absent header', () => {
    const parsed: unknown = JSON.parse(formatJsonLine({ ...BASE, referer: undefined }));
    assert.deepEqual(parsed, {
      time: '2024-06-10T12:03:07.250Z', remoteAddr: '203.0.113.9', method: 'GET', uri: '/a%20b?x=1', protocol: 'HTTP/1.1',
      status: 200, bytes: 512, durationSeconds: 0.012346, referer: null, userAgent: 'curl/8.0', requestId: 'abc-123',
    });
  });

  it('reads head bytes as UTF-8 when they are UTF-8, else keeps them one char per byte; percent-encodes the uri', () => {
    const parsed = JSON.parse(formatJsonLine({ ...BASE, target: '/caf\xc3\xa9 x', userAgent: 'caf\xc3\xa9', referer: 'bad \xff\xc3' })) as Record<string, unknown>;
    assert.equal(parsed['uri'], '/caf%C3%A9%20x');
    assert.equal(parsed['userAgent'], 'café');
    assert.equal(parsed['referer'], 'bad \xff\xc3');
  });

  for (const value of HOSTILE) {
    it(`a hostile value stays in its field, on one ASCII line: ${JSON.stringify(value.slice(0, 40))}`, () => {
      const line = formatJsonLine({ ...BASE, target: value, referer: value, userAgent: value, method: value.slice(0, 50) });
      assert.match(line, /^[\x20-\x7e]*\n$/, 'printable ASCII only: no raw newline, U+2028, U+0085 or invalid UTF-8');
      assert.ok(Buffer.byteLength(line) <= ATOMIC_PIPE_WRITE_BYTES, `fits one atomic write (${line.length})`);
      const parsed = JSON.parse(line) as Record<string, unknown>;
      assert.deepEqual(Object.keys(parsed), ['time', 'remoteAddr', 'method', 'uri', 'protocol', 'status', 'bytes', 'durationSeconds', 'referer', 'userAgent', 'requestId']);
      assert.equal(parsed['status'], 200);
      assert.equal(parsed['requestId'], 'abc-123');
      const agent = parsed['userAgent'] as string;
      if (value.length <= 80 && /^[\x00-\x7f]*$/.test(value)) assert.equal(agent, value, 'ASCII comes back as sent');
      assert.ok(agent.length <= 500);
    });
  }

  it('cuts a long field at an escape\'s boundary, marked `...`', () => {
    for (const text of ['a'.repeat(600), '\n'.repeat(600), `${'a'.repeat(495)}\n\n\n`, `${'a'.repeat(495)}\u00e9`, '\\'.repeat(600)]) {
      const literal = jsonAscii(text, 500);
      assert.ok(literal.length <= 502, `${literal.length}`);
      const value = JSON.parse(literal) as string;
      assert.ok(value.endsWith('...'));
      assert.ok(text.startsWith(value.slice(0, -3)), 'a prefix of the value, unchanged');
    }
  });
});

describe('formats', () => {
  it('every format has a formatter, and each line ends with one newline', () => {
    for (const format of ACCESS_LOG_FORMATS) {
      const line = accessLineFormatter(format)(BASE);
      assert.ok(line.endsWith('\n') && !line.slice(0, -1).includes('\n'), format);
    }
  });
});

describe('request ids', () => {
  it('a well-formed X-Request-ID is 1-200 printable ASCII chars, without quote, backslash or comma', () => {
    for (const good of ['a', 'abc-123', '5f0c6b8e-1e2d-4c1b-9d7a-0e4f2a1b3c4d', 'Root=1-67891233-abcdef012345678912345678;Self=x', 'x'.repeat(200), 'a;b=c+d/e_f.g:h']) {
      assert.ok(isWellFormedRequestId(good), good);
    }
    for (const bad of ['', 'x'.repeat(201), 'a b', 'a"b', 'a\\b', 'a\nb', 'a\0', '\xe9', 'a\tb', 'a,b', ',']) {
      assert.ok(!isWellFormedRequestId(bad), JSON.stringify(bad));
    }
  });
});
