/**
 * @module Who may see the status page, and what its files are served with.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { StatusPage } from '../../src/front/builtins/status.js';

const snapshot = async (): Promise<string | null> => '{"ok":true}';

test('owns /status, /status.json and /status/assets/*, nothing else', () => {
  for (const path of ['/status', '/status.json', '/status/assets/status.js']) assert.ok(StatusPage.owns(path), path);
  for (const path of ['/', '/statusx', '/status/', '/status/other', '/welcome/status', '/status.jsonx']) assert.ok(!StatusPage.owns(path), path);
});

test('without --status-token: loopback sees it; the world reaches the application, token or not', () => {
  const page = new StatusPage(null, snapshot);
  assert.equal(page.access('127.0.0.1', {}, ''), 'allowed');
  assert.equal(page.access('::1', {}, ''), 'allowed');
  assert.equal(page.access('::ffff:127.0.0.1', {}, ''), 'allowed');
  assert.equal(page.access('203.0.113.9', {}, ''), 'not-ours');
  // A `token` means nothing without --status-token: it may be the application's own parameter.
  assert.equal(page.access('203.0.113.9', { authorization: 'Bearer x' }, 'token=x'), 'not-ours');
});

test('with --status-token: the right token from anywhere; a wrong one is refused; none from the world is the app\'s', () => {
  const page = new StatusPage('s3cret-token', snapshot);
  assert.equal(page.access('203.0.113.9', { authorization: 'Bearer s3cret-token' }, ''), 'allowed');
  assert.equal(page.access('203.0.113.9', { authorization: 'bearer s3cret-token' }, ''), 'allowed');
  assert.equal(page.access('203.0.113.9', {}, 'a=1&token=s3cret-token'), 'allowed');
  assert.equal(page.access('203.0.113.9', { authorization: 'Bearer s3cret-tokeN' }, ''), 'refused');
  assert.equal(page.access('203.0.113.9', {}, 'token=s3cret'), 'refused');
  assert.equal(page.access('203.0.113.9', {}, 'token=s3cret-token-and-more'), 'refused');
  assert.equal(page.access('203.0.113.9', { authorization: 'Basic czNjcmV0' }, ''), 'not-ours');
  assert.equal(page.access('203.0.113.9', {}, ''), 'not-ours');
  assert.equal(page.access('203.0.113.9', {}, 'token='), 'not-ours');
  // Loopback needs no token, and a wrong one does not lock it out.
  assert.equal(page.access('127.0.0.1', { authorization: 'Bearer wrong' }, ''), 'allowed');
});
