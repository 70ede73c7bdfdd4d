/**
 * @module Trusted proxies, pure: CIDR matching (IPv4, IPv6, IPv4-mapped), the chain walk,
 * RFC 7239 Forwarded parsing, what a trusted peer's headers change in the environ, and that an
 * untrusted peer's forwarding headers never reach the application.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { ProxyHeaderName } from '../../src/config/settings.js';
import { cidrList } from '../../src/config/validators.js';
import { buildEnviron, type ListenerFacts } from '../../src/front/environ.js';
import {
  compileProxyTrust, findClientHop, parseForwarded, parseNode, resolveForwarding,
  type ForwardedView, type ForwardingValues, type ProxyTrust,
} from '../../src/front/proxy-trust.js';

/** Trust as the server builds it: the validated list, then compiled. */
function trust(list: string, headers: readonly ProxyHeaderName[] = ['x-forwarded-for', 'x-forwarded-proto']): ProxyTrust {
  const compiled = compileProxyTrust(cidrList().parse(list, { cwd: '/' }), headers);
  assert.ok(compiled !== null);
  return compiled;
}

function resolved(values: ForwardingValues, proxies: ProxyTrust, request: { scheme: 'http' | 'https'; host?: string } = { scheme: 'http' }): ForwardedView {
  const result = resolveForwarding(values, proxies, { scheme: request.scheme, host: request.host ?? 'app.example' });
  assert.ok(!('badRequest' in result), `refused: ${'badRequest' in result ? result.badRequest : ''}`);
  return result;
}

function refused(values: ForwardingValues, proxies: ProxyTrust): string {
  const result = resolveForwarding(values, proxies, { scheme: 'http', host: 'app.example' });
  assert.ok('badRequest' in result, `expected a refusal, got ${JSON.stringify(result)}`);
  return result.badRequest;
}

describe('CIDR matching', () => {
  test('no trusted proxy: no matcher at all', () => {
    assert.equal(compileProxyTrust([], ['x-forwarded-for']), null);
  });

  test('IPv4 ranges and single addresses', () => {
    const proxies = trust('10.0.0.0/8,192.0.2.7');
    for (const address of ['10.0.0.1', '10.255.255.255', '192.0.2.7']) assert.ok(proxies.isTrusted(address), address);
    for (const address of ['11.0.0.1', '9.255.255.255', '192.0.2.8', '192.0.2.6']) assert.ok(!proxies.isTrusted(address), address);
  });

  test('IPv6 ranges; no IPv4 address is inside an IPv6 range or the other way round', () => {
    const proxies = trust('2001:db8::/32,::1');
    for (const address of ['2001:db8::1', '2001:DB8:ffff::', '::1', '0:0:0:0:0:0:0:1']) assert.ok(proxies.isTrusted(address), address);
    for (const address of ['2001:db9::1', '::2', '127.0.0.1']) assert.ok(!proxies.isTrusted(address), address);
    assert.ok(!trust('10.0.0.0/8').isTrusted('2001:db8::1'));
  });

  test('an IPv4-mapped IPv6 peer (dual-stack listener) matches IPv4 ranges', () => {
    const proxies = trust('10.0.0.0/8,127.0.0.1');
    assert.ok(proxies.isTrusted('::ffff:10.1.2.3'));
    assert.ok(proxies.isTrusted('::ffff:127.0.0.1'));
    assert.ok(!proxies.isTrusted('::ffff:11.1.2.3'));
  });

  test('loopback means 127.0.0.0/8 and ::1', () => {
    const proxies = trust('loopback');
    for (const address of ['127.0.0.1', '127.9.8.7', '::1', '::ffff:127.0.0.1']) assert.ok(proxies.isTrusted(address), address);
    for (const address of ['128.0.0.1', '::2', '10.0.0.1']) assert.ok(!proxies.isTrusted(address), address);
  });

  test('unix trusts Unix socket peers only; no address matches it', () => {
    const proxies = trust('unix');
    assert.ok(proxies.trustsUnixPeers);
    for (const address of ['', '127.0.0.1', '::1']) assert.ok(!proxies.isTrusted(address), address);
    assert.ok(!trust('loopback').trustsUnixPeers);
    const both = trust('unix,10.0.0.0/8');
    assert.ok(both.trustsUnixPeers && both.isTrusted('10.1.2.3'));
  });

  test('what is not an address is never trusted', () => {
    const proxies = trust('10.0.0.0/8');
    for (const text of ['', 'unknown', '_hidden', '10.0.0.1:80', '[10.0.0.1]', 'localhost']) assert.ok(!proxies.isTrusted(text), text);
  });
});

describe('one hop (parseNode)', () => {
  test('addresses with and without ports, IPv6 with and without brackets, canonical text', () => {
    assert.deepEqual(parseNode('192.0.2.60'), { kind: 'ip', address: '192.0.2.60', port: '' });
    assert.deepEqual(parseNode('192.0.2.60:4711'), { kind: 'ip', address: '192.0.2.60', port: '4711' });
    assert.deepEqual(parseNode('[2001:db8::1]:4711'), { kind: 'ip', address: '2001:db8::1', port: '4711' });
    assert.deepEqual(parseNode('[2001:DB8:0::1]'), { kind: 'ip', address: '2001:db8::1', port: '' });
    assert.deepEqual(parseNode('2001:db8::1'), { kind: 'ip', address: '2001:db8::1', port: '' });
    assert.deepEqual(parseNode('::ffff:192.0.2.9'), { kind: 'ip', address: '192.0.2.9', port: '' });
    assert.deepEqual(parseNode('[2001:db8::1]:_port'), { kind: 'ip', address: '2001:db8::1', port: '' });
  });

  test('unknown and obfuscated identifiers (RFC 7239 §6.2, §6.3)', () => {
    assert.deepEqual(parseNode('unknown'), { kind: 'unknown' });
    assert.deepEqual(parseNode('UNKNOWN'), { kind: 'unknown' });
    assert.deepEqual(parseNode('_hidden'), { kind: 'obfuscated', name: '_hidden' });
    assert.deepEqual(parseNode('_SEVKISEK:_8080'), { kind: 'obfuscated', name: '_SEVKISEK:_8080' });
  });

  test('anything else is malformed', () => {
    for (const text of ['', 'garbage', '1.2.3', '1.2.3.4.5', '[1.2.3.4]', '2001:db8::1:80:', '[2001:db8::1', '1.2.3.4:99999',
      '[::1]:70000', 'fe80::1%eth0', '1.2.3.4:', '[]', 'example.com']) {
      assert.equal(parseNode(text).kind, 'malformed', text);
    }
  });
});

describe('the chain walk (findClientHop)', () => {
  const proxies = trust('10.0.0.0/8');
  const chain = (text: string): ReturnType<typeof parseNode>[] => text.split(',').map((item) => parseNode(item.trim()));

  test('the right-most address that is not a trusted proxy', () => {
    assert.equal(findClientHop(chain('203.0.113.9'), proxies), 0);
    assert.equal(findClientHop(chain('6.6.6.6, 203.0.113.9'), proxies), 1);
    assert.equal(findClientHop(chain('6.6.6.6, 203.0.113.9, 10.0.0.2, 10.0.0.3'), proxies), 1);
  });

  test('a forged entry left of the client is never reached, even a trusted-looking one', () => {
    assert.equal(findClientHop(chain('10.0.0.9, 203.0.113.9, 10.0.0.2'), proxies), 1);
    assert.equal(findClientHop(chain('garbage, 203.0.113.9'), proxies), 1);
  });

  test('every hop trusted: the left-most one', () => {
    assert.equal(findClientHop(chain('10.0.0.1, 10.0.0.2'), proxies), 0);
  });

  test('the walk stops at a hop that is not an address', () => {
    assert.equal(findClientHop(chain('203.0.113.9, unknown, 10.0.0.2'), proxies), 1);
    assert.equal(findClientHop(chain('203.0.113.9, _hidden'), proxies), 1);
  });
});

describe('Forwarded (RFC 7239) parsing', () => {
  const params = (value: string): Record<string, string>[] | null => parseForwarded(value)?.map((element) => Object.fromEntries(element)) ?? null;

  test('the RFC examples', () => {
    assert.deepEqual(params('for="_gazonk"'), [{ for: '_gazonk' }]);
    assert.deepEqual(params('For="[2001:db8:cafe::17]:4711"'), [{ for: '[2001:db8:cafe::17]:4711' }]);
    assert.deepEqual(params('for=192.0.2.60;proto=http;by=203.0.113.43'), [{ for: '192.0.2.60', proto: 'http', by: '203.0.113.43' }]);
    assert.deepEqual(params('for=192.0.2.43, for=198.51.100.17'), [{ for: '192.0.2.43' }, { for: '198.51.100.17' }]);
  });

  test('quoted strings keep commas, semicolons and escapes; spaces around separators are allowed', () => {
    assert.deepEqual(params('for="a,b;c";host="x\\"y" ,  for=unknown ; proto=HTTPS'), [
      { for: 'a,b;c', host: 'x"y' }, { for: 'unknown', proto: 'HTTPS' },
    ]);
  });

  test('empty elements and pairs are skipped', () => {
    assert.deepEqual(params(',for=192.0.2.1;;, ,for=192.0.2.2,'), [{ for: '192.0.2.1' }, { for: '192.0.2.2' }]);
    assert.deepEqual(params(''), []);
  });

  test('unquoted IPv6 is accepted (a common nginx recipe writes it)', () => {
    assert.deepEqual(params('for=[2001:db8::1]:80;proto=https'), [{ for: '[2001:db8::1]:80', proto: 'https' }]);
  });

  test('malformed: no =, a parameter twice, an open quote, stray characters, an empty value', () => {
    for (const value of ['for', 'for=1.2.3.4;for=1.2.3.5', 'for="1.2.3.4', 'for=1.2.3.4 x', 'for=', 'for=a/b', '=1.2.3.4', 'for="a\\']) {
      assert.equal(parseForwarded(value), null, value);
    }
  });
});

describe('a trusted peer\'s X-Forwarded-* (resolveForwarding)', () => {
  const proxies = trust('10.0.0.0/8', ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-by']);

  test('REMOTE_ADDR from the chain; the application sees only the resolved address in X-Forwarded-For', () => {
    const view = resolved({ 'x-forwarded-for': '127.0.0.1, 203.0.113.9, 10.0.0.2' }, proxies);
    assert.equal(view.remoteAddr, '203.0.113.9');
    assert.equal(view.remotePort, '');
    assert.deepEqual(view.pairs, ['HTTP_X_FORWARDED_FOR', '203.0.113.9']);
  });

  test('IPv6 and IPv4-mapped clients, a client port', () => {
    assert.equal(resolved({ 'x-forwarded-for': '2001:DB8::0:1' }, proxies).remoteAddr, '2001:db8::1');
    assert.equal(resolved({ 'x-forwarded-for': '::ffff:198.51.100.4' }, proxies).remoteAddr, '198.51.100.4');
    const withPort = resolved({ 'x-forwarded-for': '"[2001:db8::1]:4711"' }, proxies);
    assert.deepEqual([withPort.remoteAddr, withPort.remotePort], ['2001:db8::1', '4711']);
  });

  test('scheme from X-Forwarded-Proto, http or https in any case', () => {
    assert.equal(resolved({ 'x-forwarded-proto': 'HTTPS' }, proxies).scheme, 'https');
    assert.equal(resolved({ 'x-forwarded-proto': 'http' }, proxies, { scheme: 'https' }).scheme, 'http');
    assert.deepEqual(resolved({ 'x-forwarded-proto': 'https' }, proxies).pairs, ['HTTP_X_FORWARDED_PROTO', 'https']);
    assert.equal(resolved({ 'x-forwarded-for': '203.0.113.9' }, proxies).scheme, null);
  });

  test('lists of Proto/Host: the value of the proxy the client spoke to, counted by the hops the walk crossed', () => {
    // One trusted hop (the peer): the right-most value; a client-sent value on its left is ignored.
    const one = resolved({ 'x-forwarded-for': '203.0.113.9', 'x-forwarded-host': 'evil.example, shop.example', 'x-forwarded-proto': 'http, https' }, proxies);
    assert.deepEqual([one.host, one.scheme], ['shop.example', 'https']);
    // Two trusted hops (10.0.0.2 and the peer), each appending: the first proxy's view.
    const two = resolved({ 'x-forwarded-for': '203.0.113.9, 10.0.0.2', 'x-forwarded-host': 'evil.example, shop.example, internal.example' }, proxies);
    assert.equal(two.host, 'shop.example');
    // Fewer values than hops: the left-most.
    assert.equal(resolved({ 'x-forwarded-for': '203.0.113.9, 10.0.0.2', 'x-forwarded-host': 'shop.example' }, proxies).host, 'shop.example');
  });

  test('X-Forwarded-Host becomes HTTP_HOST; X-Forwarded-Port joins it unless default or the host has one', () => {
    assert.equal(resolved({ 'x-forwarded-host': 'shop.example:8443' }, proxies).host, 'shop.example:8443');
    assert.equal(resolved({ 'x-forwarded-host': 'shop.example', 'x-forwarded-port': '8443' }, proxies).host, 'shop.example:8443');
    assert.equal(resolved({ 'x-forwarded-host': 'shop.example:444', 'x-forwarded-port': '8443' }, proxies).host, 'shop.example:444');
    assert.equal(resolved({ 'x-forwarded-host': 'shop.example', 'x-forwarded-port': '443', 'x-forwarded-proto': 'https' }, proxies).host, 'shop.example');
    assert.equal(resolved({ 'x-forwarded-host': 'shop.example', 'x-forwarded-port': '443' }, proxies).host, 'shop.example:443');
    assert.equal(resolved({ 'x-forwarded-port': '8080' }, proxies, { scheme: 'http', host: 'app.example:8000' }).host, 'app.example:8080');
    assert.equal(resolved({ 'x-forwarded-port': '80' }, proxies, { scheme: 'http', host: '[::1]:8000' }).host, '[::1]');
    assert.equal(resolved({ 'x-forwarded-host': '[2001:db8::1]:8443' }, proxies).host, '[2001:db8::1]:8443');
    assert.equal(resolved({ 'x-forwarded-for': '203.0.113.9' }, proxies).host, null);
  });

  test('X-Forwarded-By is passed on as sent', () => {
    assert.deepEqual(resolved({ 'x-forwarded-by': '10.0.0.2, 10.0.0.3' }, proxies).pairs, ['HTTP_X_FORWARDED_BY', '10.0.0.2, 10.0.0.3']);
  });

  test('malformed values get 400: a client hop that is no address, a bad proto, host or port', () => {
    assert.match(refused({ 'x-forwarded-for': '203.0.113.9, garbage' }, proxies), /^X-Forwarded-For from a trusted proxy: the client's hop \("garbage"\) is not an address$/);
    assert.match(refused({ 'x-forwarded-for': 'unknown' }, proxies), /the client's hop is "unknown"/);
    assert.match(refused({ 'x-forwarded-for': '203.0.113.9, _hidden, 10.0.0.2' }, proxies), /obfuscated name \("_hidden"\)/);
    assert.match(refused({ 'x-forwarded-proto': 'ftp' }, proxies), /^X-Forwarded-Proto from a trusted proxy must be http or https, not "ftp"$/);
    assert.match(refused({ 'x-forwarded-host': 'a b' }, proxies), /^X-Forwarded-Host from a trusted proxy is not a host: "a b"$/);
    assert.match(refused({ 'x-forwarded-host': 'evil.example/path' }, proxies), /not a host/);
    assert.match(refused({ 'x-forwarded-port': '0' }, proxies), /^X-Forwarded-Port from a trusted proxy is not a port: "0"$/);
    assert.match(refused({ 'x-forwarded-port': 'https' }, proxies), /not a port/);
  });

  test('a malformed entry left of the client is the client\'s own business: no 400', () => {
    assert.equal(resolved({ 'x-forwarded-for': 'garbage, "", 203.0.113.9' }, proxies).remoteAddr, '203.0.113.9');
  });

  test('headers not honoured are ignored', () => {
    const forOnly = trust('10.0.0.0/8', ['x-forwarded-for']);
    const view = resolved({ 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example', forwarded: 'for=1.2.3.4' }, forOnly);
    assert.deepEqual(view, { remoteAddr: '203.0.113.9', remotePort: '', scheme: null, host: null, pairs: ['HTTP_X_FORWARDED_FOR', '203.0.113.9'] });
    assert.deepEqual(resolved({ 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'ftp' }, forOnly).scheme, null);
  });
});

describe('a trusted peer\'s Forwarded', () => {
  const proxies = trust('10.0.0.0/8', ['forwarded']);

  test('for= walks like X-Forwarded-For; proto and host from the element of the proxy the client spoke to', () => {
    const value = 'for=127.0.0.1;proto=http, for="[2001:db8::1]:4711";host="shop.example:8443";proto=https, for=10.0.0.2;host=internal;proto=http';
    const view = resolved({ forwarded: value }, proxies);
    assert.deepEqual(view, { remoteAddr: '2001:db8::1', remotePort: '4711', scheme: 'https', host: 'shop.example:8443', pairs: ['HTTP_FORWARDED', value] });
  });

  test('an inner element that does not say proto or host leaves it to a later one', () => {
    const view = resolved({ forwarded: 'for=203.0.113.9, for=10.0.0.2;proto=https;host=shop.example' }, proxies);
    assert.deepEqual([view.remoteAddr, view.scheme, view.host], ['203.0.113.9', 'https', 'shop.example']);
  });

  test('several Forwarded lines are one list', () => {
    const env = environOf({ peer: '10.0.0.1', proxies, headers: ['Forwarded', 'for=6.6.6.6', 'Forwarded', 'for=203.0.113.9;proto=https'] });
    assert.equal(env.REMOTE_ADDR, '203.0.113.9');
    assert.equal(env['wsgi.url_scheme'], 'https');
    assert.equal(env.HTTP_FORWARDED, 'for=6.6.6.6,for=203.0.113.9;proto=https');
  });

  test('no for= anywhere: REMOTE_ADDR stays the peer, proto still counts', () => {
    const view = resolved({ forwarded: 'proto=https' }, proxies);
    assert.deepEqual([view.remoteAddr, view.scheme], [null, 'https']);
  });

  test('400: malformed header, a client hop without for=, unknown or obfuscated, bad proto or host', () => {
    assert.match(refused({ forwarded: 'for=1.2.3.4;for=5.6.7.8' }, proxies), /^Forwarded from a trusted proxy is malformed: "for=1.2.3.4;for=5.6.7.8"$/);
    assert.match(refused({ forwarded: 'for=203.0.113.9, proto=https' }, proxies), /^Forwarded from a trusted proxy: the client's hop names no address$/);
    assert.match(refused({ forwarded: 'for=unknown' }, proxies), /is "unknown"/);
    assert.match(refused({ forwarded: 'for="_gazonk"' }, proxies), /obfuscated name \("_gazonk"\)/);
    assert.match(refused({ forwarded: 'for=203.0.113.9;proto=gopher' }, proxies), /^Forwarded proto= from a trusted proxy must be http or https, not "gopher"$/);
    assert.match(refused({ forwarded: 'for=203.0.113.9;host="a@b"' }, proxies), /^Forwarded host= from a trusted proxy is not a host/);
  });

  test('X-Forwarded-* are ignored when Forwarded is the trusted kind', () => {
    const view = resolved({ 'x-forwarded-for': '1.2.3.4', 'x-forwarded-proto': 'https' }, proxies);
    assert.deepEqual(view, { remoteAddr: null, remotePort: null, scheme: null, host: null, pairs: [] });
  });
});

function environOf(options: { peer: string; proxies?: ProxyTrust | null; headers: string[]; isTls?: boolean }): Record<string, string> {
  const listener: ListenerFacts = { serverName: '127.0.0.1', serverPort: '8000', isTls: options.isTls ?? false, proxies: options.proxies ?? null };
  const result = buildEnviron({
    method: 'GET', target: '/a', httpVersion: '1.1', rawHeaders: ['Host', 'app.example:8000', ...options.headers],
    remoteAddress: options.peer, remotePort: 50000,
  }, listener);
  assert.ok(!('badRequest' in result), 'badRequest' in result ? result.badRequest : '');
  const env: Record<string, string> = {};
  for (let i = 0; i < result.pairs.length; i += 2) env[result.pairs[i]!] = result.pairs[i + 1]!;
  assert.equal(result.remoteAddr, env.REMOTE_ADDR);
  return env;
}

describe('the environ (buildEnviron)', () => {
  const proxies = trust('127.0.0.1/32');
  const forged = ['X-Forwarded-For', '127.0.0.1', 'X-Forwarded-Proto', 'https', 'X-Forwarded-Host', 'evil.example',
    'X-Forwarded-Port', '443', 'X-Forwarded-By', 'me', 'Forwarded', 'for=127.0.0.1;proto=https'];

  test('from an untrusted peer every forwarding header is dropped, whatever is configured', () => {
    for (const config of [null, proxies, trust('127.0.0.1/32', ['forwarded'])]) {
      const env = environOf({ peer: '203.0.113.9', proxies: config, headers: forged });
      assert.equal(env.REMOTE_ADDR, '203.0.113.9');
      assert.equal(env.REMOTE_PORT, '50000');
      assert.equal(env['wsgi.url_scheme'], 'http');
      assert.equal(env.HTTPS, undefined);
      assert.equal(env.HTTP_HOST, 'app.example:8000');
      assert.deepEqual(Object.keys(env).filter((key) => /FORWARDED/.test(key)), []);
    }
  });

  test('from a trusted peer: client, scheme and HTTPS; headers not honoured dropped; SERVER_NAME/PORT stay the listener\'s', () => {
    const env = environOf({ peer: '::ffff:127.0.0.1', proxies, headers: ['X-Forwarded-For', '6.6.6.6, 203.0.113.9', ...forged.slice(2)] });
    assert.equal(env.REMOTE_ADDR, '203.0.113.9');
    assert.equal(env.REMOTE_PORT, '');
    assert.equal(env['wsgi.url_scheme'], 'https');
    assert.equal(env.HTTPS, 'on');
    assert.equal(env.HTTP_X_FORWARDED_FOR, '203.0.113.9');
    assert.equal(env.HTTP_X_FORWARDED_PROTO, 'https');
    assert.equal(env.HTTP_HOST, 'app.example:8000');
    assert.equal(env.SERVER_NAME, '127.0.0.1');
    assert.equal(env.SERVER_PORT, '8000');
    for (const key of ['HTTP_X_FORWARDED_HOST', 'HTTP_X_FORWARDED_PORT', 'HTTP_X_FORWARDED_BY', 'HTTP_FORWARDED']) assert.equal(env[key], undefined, key);
  });

  test('a trusted proxy saying http on a TLS listener: http, no HTTPS', () => {
    const env = environOf({ peer: '127.0.0.1', proxies, isTls: true, headers: ['X-Forwarded-Proto', 'http'] });
    assert.equal(env['wsgi.url_scheme'], 'http');
    assert.equal(env.HTTPS, undefined);
  });

  test('repeated X-Forwarded-For lines are one list', () => {
    const env = environOf({ peer: '127.0.0.1', proxies, headers: ['X-Forwarded-For', '6.6.6.6', 'x-forwarded-for', '203.0.113.9'] });
    assert.equal(env.REMOTE_ADDR, '203.0.113.9');
  });

  test('a trusted peer without forwarding headers is itself the client', () => {
    const env = environOf({ peer: '127.0.0.1', proxies, headers: [] });
    assert.deepEqual([env.REMOTE_ADDR, env.REMOTE_PORT, env['wsgi.url_scheme']], ['127.0.0.1', '50000', 'http']);
  });

  test('a malformed header from a trusted peer is a bad request', () => {
    const result = buildEnviron({
      method: 'GET', target: '/', httpVersion: '1.1', rawHeaders: ['Host', 'a', 'X-Forwarded-Proto', 'https, http, ftp'],
      remoteAddress: '127.0.0.1', remotePort: 1,
    }, { serverName: '127.0.0.1', serverPort: '8000', isTls: false, proxies });
    assert.deepEqual(result, { badRequest: 'X-Forwarded-Proto from a trusted proxy must be http or https, not "ftp"' });
  });
});
