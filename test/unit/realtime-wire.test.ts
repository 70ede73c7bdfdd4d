/**
 * The realtime hub's pure parts: web2py's routes and form fields, signatures, tokens, groups
 * with presence and slow consumers. Each web2py bug the hub fixes has its case here or in
 * test/e2e/realtime.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkPost, formFields, route, sign } from '../../src/front/realtime/wire.js';
import { Tokens } from '../../src/front/realtime/tokens.js';
import { Groups, type Member } from '../../src/front/realtime/groups.js';
import { readEvent } from '../../src/front/realtime/events.js';

test('routes: /, /token and /realtime/<group>[/<token>][/<name>] (web2py raised with 2 or 3 segments)', () => {
  assert.deepEqual(route(''), { kind: 'publish' });
  assert.deepEqual(route('token'), { kind: 'token' });
  assert.deepEqual(route('realtime/chat'), { kind: 'join', group: 'chat', token: 'none', name: 'anonymous' });
  assert.deepEqual(route('realtime/chat/t1'), { kind: 'join', group: 'chat', token: 't1', name: 'anonymous' });
  assert.deepEqual(route('realtime/chat/t1/Ann%20Lee'), { kind: 'join', group: 'chat', token: 't1', name: 'Ann Lee' });
  assert.deepEqual(route('realtime/'), { kind: 'join', group: 'default', token: 'none', name: 'anonymous' });
  assert.deepEqual(route('realtime/a/b/c/d'), { kind: 'none' });
  assert.deepEqual(route('realtime/%E0%A4%A'), { kind: 'none' });
  assert.deepEqual(route('elsewhere'), { kind: 'none' });
});

test('form fields: query and body together, the first value wins, as Tornado reads them', () => {
  const fields = formFields('group=q', 'message=a%20b&group=body&message=second');
  assert.equal(fields.get('message'), 'a b');
  assert.equal(fields.get('group'), 'q');
});

test('signatures: HMAC-MD5 hex as websocket_send makes it; missing or wrong is 401 and nothing is published', () => {
  assert.equal(sign('hello', 'key'), '04130747afca4d79e32e87cf2104f087');
  const ok = checkPost(new Map([['message', 'hello'], ['signature', sign('hello', 'key')]]), 'key');
  assert.deepEqual(ok, { ok: true, message: 'hello', group: 'default' }, 'no group: the default group (web2py answered 500)');
  assert.deepEqual(checkPost(new Map([['message', 'hello']]), 'key'), { ok: false, status: 401, reason: 'no signature' });
  assert.deepEqual(checkPost(new Map([['message', 'hello'], ['signature', 'x'.repeat(32)]]), 'key'), { ok: false, status: 401, reason: 'bad signature' });
  assert.deepEqual(checkPost(new Map([['message', 'hello'], ['signature', 'short']]), 'key'), { ok: false, status: 401, reason: 'bad signature' });
  assert.deepEqual(checkPost(new Map([['signature', 'x']]), 'key'), { ok: false, status: 400, reason: 'no message field' });
  assert.deepEqual(checkPost(new Map([['message', 'm'], ['group', 'g']]), null), { ok: true, message: 'm', group: 'g' });
});

test('tokens: one connection each, not re-armed while held (web2py re-armed it), freed at close, expire unused', () => {
  let now = 0;
  const tokens = new Tokens(1000, 3, () => now);
  assert.equal(tokens.take('t'), false, 'never armed');
  assert.equal(tokens.arm('t'), 'armed');
  assert.equal(tokens.take('t'), true);
  assert.equal(tokens.take('t'), false, 'a second connection with the same token');
  assert.equal(tokens.arm('t'), 'in-use', 're-posted while held');
  tokens.release('t');
  assert.equal(tokens.size, 0, 'freed (web2py kept every token forever)');
  assert.equal(tokens.arm('t'), 'armed');
  now = 2000;
  assert.equal(tokens.take('t'), false, 'expired');
  for (const name of ['a', 'b', 'c', 'd']) tokens.arm(name);
  assert.equal(tokens.size, 3, 'bounded: the oldest armed token goes');
  assert.equal(tokens.take('a'), false);
  now = 5000;
  tokens.sweep();
  assert.equal(tokens.size, 0);
});

class FakeMember implements Member {
  received: string[] = [];
  isOpen = true;
  bufferedAmount = 0;
  dropped = false;
  constructor(readonly group: string, readonly name: string) {}
  send(data: Buffer): void { this.received.push(data.toString()); }
  dropSlow(): void { this.dropped = true; this.isOpen = false; }
}

test('groups: presence to the others on join and leave, closing members skipped, slow consumers dropped', () => {
  const groups = new Groups(100, true);
  const ann = new FakeMember('g', 'ann');
  const bob = new FakeMember('g', 'bob');
  const eve = new FakeMember('other', 'eve');
  groups.join(ann);
  groups.join(bob);
  groups.join(eve);
  assert.deepEqual(ann.received, ['+bob']);
  assert.deepEqual(bob.received, [], 'the newcomer is not told about itself');
  const closing = new FakeMember('g', 'cid');
  groups.join(closing);
  closing.isOpen = false; // web2py's loop raised on such a member and later members missed the message
  const late = new FakeMember('g', 'zed');
  groups.join(late);
  assert.deepEqual(groups.broadcast('g', 'hi'), { delivered: 3, dropped: 0 });
  assert.equal(late.received.at(-1), 'hi');
  bob.bufferedAmount = 101;
  assert.deepEqual(groups.broadcast('g', 'again'), { delivered: 2, dropped: 1 });
  assert.equal(bob.dropped, true);
  groups.leave(bob);
  assert.equal(ann.received.at(-1), '-bob');
  assert.deepEqual(eve.received, [], 'other groups hear nothing');
  assert.equal(groups.memberCount, 4);
  const quiet = new Groups(100, false);
  quiet.join(ann);
  quiet.join(new FakeMember('g', 'x'));
  assert.equal(ann.received.at(-1), '-bob', '--realtime-presence off: no notices');
});

test('events from peers are checked', () => {
  assert.deepEqual(readEvent({ t: 'msg', g: 'g', m: 'm' }, 10), { t: 'msg', g: 'g', m: 'm' });
  assert.equal(readEvent({ t: 'msg', g: 'g', m: 'x'.repeat(11) }, 10), null);
  assert.equal(readEvent({ t: 'msg', g: 1, m: 'm' }, 10), null);
  assert.deepEqual(readEvent({ t: 'take', k: 'tok' }, 10), { t: 'take', k: 'tok' });
  assert.equal(readEvent({ t: 'nope' }, 10), null);
  assert.equal(readEvent(null, 10), null);
});
