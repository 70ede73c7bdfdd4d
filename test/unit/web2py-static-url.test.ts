/**
 * @module web2py's static URL rule (src/front/static/web2py-url.ts): mapping, versions, spaces,
 * attachment, and every traversal encoding refused. Inputs are PATH_INFO as the WSGI server gives
 * it (decoded once); web2py decodes it once more, so `%2e` here is `%252e` on the wire.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { acceptedCodings, parseByteRanges } from '../../src/front/static/serve.js';
import { describeStaticOffload, isStaticOffloadEnabled } from '../../src/front/static/offload.js';
import { hiddenTraversal, mapStaticUrl, percentDecodeAscii, type StaticUrl } from '../../src/front/static/web2py-url.js';

const file = (app: string, path: string, version: string | null = null, attachment = false): StaticUrl =>
  ({ kind: 'file', app, file: path, version, attachment });

describe('mapping', () => {
  const cases: Array<[string, string, StaticUrl]> = [
    ['/welcome/static/css/web2py.css', '', file('welcome', 'css/web2py.css')],
    ['/welcome/static/js/app.js', 'x=1', file('welcome', 'js/app.js')],
    ['/my_app2/static/favicon.ico', '', file('my_app2', 'favicon.ico')],
    // trailing slash dropped (one), `\` → `/`
    ['/welcome/static/css/web2py.css/', '', file('welcome', 'css/web2py.css')],
    ['/welcome/static/css\\web2py.css', '', file('welcome', 'css/web2py.css')],
    ['/welcome/static/css%5cweb2py.css', '', file('welcome', 'css/web2py.css')],
    // web2py unquotes PATH_INFO once more
    ['/welcome/static/css/web2py%2ecss', '', file('welcome', 'css/web2py.css')],
    ['/welcome/st%61tic/css/web2py.css', '', file('welcome', 'css/web2py.css')],
    // spaces → underscores, folders included
    ['/welcome/static/my file.txt', '', file('welcome', 'my_file.txt')],
    ['/welcome/static/my dir/a b.txt', '', file('welcome', 'my_dir/a_b.txt')],
    ['/welcome/static/my%20file.txt', '', file('welcome', 'my_file.txt')],
    // versioned
    ['/welcome/static/_2.1.1/css/web2py.css', '', file('welcome', 'css/web2py.css', '_2.1.1')],
    ['/welcome/static/_10.20.30/x.js', '', file('welcome', 'x.js', '_10.20.30')],
    ['/welcome/static/_1.2/css/web2py.css', '', file('welcome', '_1.2/css/web2py.css')],
    ['/welcome/static/_1.2.3.4/x.js', '', file('welcome', '_1.2.3.4/x.js')],
    ['/welcome/static/css/_1.2.3/x.js', '', file('welcome', 'css/_1.2.3/x.js')],
    // attachment: QUERY_STRING.startswith("attachment")
    ['/welcome/static/css/web2py.css', 'attachment', file('welcome', 'css/web2py.css', null, true)],
    ['/welcome/static/css/web2py.css', 'attachment=1&x', file('welcome', 'css/web2py.css', null, true)],
    ['/welcome/static/_1.2.3/a.css', 'attachmentfoo', file('welcome', 'a.css', '_1.2.3', true)],
    ['/welcome/static/css/web2py.css', 'x=1&attachment', file('welcome', 'css/web2py.css')],
    // a literal `%` left after web2py's decoding names a file, it is not an escape
    ['/welcome/static/100%25.txt', '', file('welcome', '100%.txt')],
    ['/welcome/static/a%zz.txt', '', file('welcome', 'a%zz.txt')],
  ];
  for (const [path, query, expected] of cases) {
    test(`${path}${query === '' ? '' : `?${query}`}`, () => assert.deepEqual(mapStaticUrl(path, query), expected));
  }
});

describe('passed to web2py', () => {
  const cases = [
    '/', '/welcome', '/welcome/default/index', '/welcome/static', '/welcome/static/', '/welcome/statics/x.css',
    '/wel-come/static/x.css', '/welcome/static/css//web2py.css', '/welcome/static/-x.css', '/welcome/static/@x.css',
    '/welcome/static/_1.2.3', '/welcome/static/_1.2.3/', '/welcome/static/caf\u00e9.css', '/welcome/static/caf%c3%a9.css',
    '/static/x.css',
  ];
  for (const path of cases) {
    test(path, () => assert.equal(mapStaticUrl(path, '').kind, 'pass'));
  }
});

describe('refused: traversal in every encoding, dotfiles, NUL', () => {
  // PATH_INFO values; the comment is what the client sent.
  const cases = [
    '/welcome/static/../../gluon/main.py',
    '/welcome/static/css/../js/app.js',
    '/welcome/static/css/..',
    '/welcome/static/..',
    '/welcome/static/./css/web2py.css',
    '/welcome/static/css/.',
    '/welcome/static/%2e%2e/%2e%2e/gluon/main.py', // %252e%252e
    '/welcome/static/%2E%2E/x', // %252E%252E
    '/welcome/static/css/%2e./x',
    '/welcome/static/css/.%2e/x',
    '/welcome/static/%252e%252e/x', // triple encoding
    '/welcome/static/%25252e%25252e/x', // quadruple
    '/welcome/static/css%2f..%2f..%2fx', // %252f
    '/welcome/static/css%5c..%5c..%5cx', // %255c
    '/welcome/static/css\\..\\..\\x',
    '/welcome/static/css/..\\x',
    '/welcome/static/css%255c..%255cx',
    '/welcome/static/.htaccess',
    '/welcome/static/css/.hidden',
    '/welcome/static/.git/config',
    '/welcome/static/css/%2ehidden',
    '/welcome/static/a\u0000.css',
    '/welcome/static/a%00.css',
    '/welcome/static/a%2500.css',
    '/welcome/static/a\n.css',
    '/welcome/static/_1.2.3/../x',
    '/welcome/static/_1.2.3/.env',
  ];
  for (const path of cases) {
    test(JSON.stringify(path), () => assert.equal(mapStaticUrl(path, '').kind, 'refuse'));
  }

  test('no accepted file path ever holds a dot segment, backslash, control byte or leading dot', () => {
    const pieces = ['.', '..', '%2e', '%252e', '%2f', '%5c', '%255c', '\\', '/', 'a', ' ', '%00', '_1.2.3', '%25'];
    const seen = new Set<string>();
    for (const a of pieces) for (const b of pieces) for (const c of pieces) {
      const result = mapStaticUrl(`/w/static/x/${a}${b}${c}/y`, '');
      if (result.kind !== 'file') continue;
      seen.add(result.file);
      for (const segment of result.file.split('/')) {
        assert.ok(segment !== '' && !segment.startsWith('.'), `${a}${b}${c} → ${result.file}`);
        assert.equal(hiddenTraversal(segment), null, `${a}${b}${c} → ${result.file}`);
      }
      assert.ok(!/[\\\u0000-\u001f]/.test(result.file));
    }
    assert.ok(seen.size > 10);
  });
});

test('percentDecodeAscii: ASCII only, lone % kept', () => {
  assert.equal(percentDecodeAscii('a%41%'), 'aA%');
  assert.equal(percentDecodeAscii('%4'), '%4');
  assert.equal(percentDecodeAscii('%c3%a9'), null);
  assert.equal(percentDecodeAscii('\u00e9'), null);
});

test('parseByteRanges', () => {
  assert.equal(parseByteRanges(undefined, 100), null);
  assert.equal(parseByteRanges('items=0-1', 100), null);
  assert.deepEqual(parseByteRanges('bytes=0-9', 100), [{ start: 0, end: 9 }]);
  assert.deepEqual(parseByteRanges('bytes=-10', 100), [{ start: 90, end: 99 }]);
  assert.deepEqual(parseByteRanges('bytes=90-', 100), [{ start: 90, end: 99 }]);
  assert.deepEqual(parseByteRanges('bytes=50-60, 0-9', 100), [{ start: 0, end: 9 }, { start: 50, end: 60 }]);
  assert.deepEqual(parseByteRanges('bytes=0-9,5-20,21-30', 100), [{ start: 0, end: 30 }]);
  assert.deepEqual(parseByteRanges('bytes=0-1000', 100), [{ start: 0, end: 99 }]);
  assert.equal(parseByteRanges('bytes=200-300', 100), null);
  assert.equal(parseByteRanges('bytes=a-b', 100), null);
  assert.equal(parseByteRanges(`bytes=${Array.from({ length: 65 }, (_, i) => `${i}-${i}`).join(',')}`, 100), null);
});

test('acceptedCodings', () => {
  assert.deepEqual(acceptedCodings(undefined), []);
  assert.deepEqual(acceptedCodings('gzip, deflate, br'), ['br', 'gzip']);
  assert.deepEqual(acceptedCodings('gzip'), ['gzip']);
  assert.deepEqual(acceptedCodings('br;q=0.5, gzip'), ['gzip', 'br']);
  assert.deepEqual(acceptedCodings('gzip;q=0, br;q=0'), []);
  assert.deepEqual(acceptedCodings('*'), ['br', 'gzip']);
  assert.deepEqual(acceptedCodings('identity'), []);
});

test('--static-offload: auto follows routes.py; on/off as said; never for --app', () => {
  const facts = (mode: 'auto' | 'on' | 'off', hasRoutesPy: boolean, isWeb2py = true) => ({ mode, hasRoutesPy, isWeb2py });
  assert.equal(isStaticOffloadEnabled(facts('auto', false)), true);
  assert.equal(isStaticOffloadEnabled(facts('auto', true)), false);
  assert.equal(isStaticOffloadEnabled(facts('on', true)), true);
  assert.equal(isStaticOffloadEnabled(facts('off', false)), false);
  assert.equal(isStaticOffloadEnabled(facts('on', false, false)), false);
  assert.match(describeStaticOffload(facts('auto', true)), /served by web2py \(routes\.py present/);
  assert.match(describeStaticOffload(facts('auto', false)), /served by the front \(auto: no routes\.py\)/);
});
