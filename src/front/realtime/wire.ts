/**
 * @module The wire format of web2py's gluon/contrib/websocket_messaging.py: routes, form fields, signatures.
 *
 * Pure functions of bytes and strings (no sockets), so every case is tested with values alone:
 * - `POST /` with `message`, `signature` (hex HMAC-MD5 of the message with the key) and `group`
 *   (`default` when absent, where web2py's server answers 500) publishes to a group;
 * - `POST /token` with `message` (the token) and `signature` arms a token (`--realtime-tokens`);
 * - `GET /realtime/<group>[/<token>][/<name>]` with `Upgrade: websocket` joins a group. web2py
 *   meant the segments to be optional but its `params.split("/") + [None, None]` unpacks only
 *   one segment, so with two or three the join fails after the 101; here all three forms work.
 * Tornado reads its arguments from the query string and the form body together; so does this.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** The group of a publish or a join that names none (web2py's default). */
export const DEFAULT_GROUP = 'default';
/** web2py's defaults for a join without a token or a name. */
export const NO_TOKEN = 'none';
export const ANONYMOUS = 'anonymous';

export type Route =
  | { kind: 'publish' }
  | { kind: 'token' }
  | { kind: 'join'; group: string; token: string; name: string }
  | { kind: 'none' };

/**
 * Where `path` (the part after the hub's prefix, without its leading `/`; query excluded) goes.
 * Segments are percent-decoded (a name may hold spaces: `/realtime/chat/none/Ann%20Lee`); one
 * that cannot be decoded, or more than three after `realtime`, is no route.
 */
export function route(path: string): Route {
  if (path === '') return { kind: 'publish' };
  if (path === 'token') return { kind: 'token' };
  if (!path.startsWith('realtime/')) return { kind: 'none' };
  const raw = path.slice('realtime/'.length).split('/');
  if (raw.length > 3) return { kind: 'none' };
  const parts: string[] = [];
  for (const segment of raw) {
    try {
      parts.push(decodeURIComponent(segment));
    } catch {
      return { kind: 'none' };
    }
  }
  const [group, token, name] = parts;
  return { kind: 'join', group: group || DEFAULT_GROUP, token: token || NO_TOKEN, name: name || ANONYMOUS };
}

/** The first value of each field of a query string and an `application/x-www-form-urlencoded` body (query first, as Tornado). */
export function formFields(query: string, body: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const source of [query, body]) {
    for (const [name, value] of new URLSearchParams(source)) if (!fields.has(name)) fields.set(name, value);
  }
  return fields;
}

/** Hex HMAC-MD5 of `message` with `key`: what websocket_send signs with. */
export function sign(message: string, key: string): string {
  return createHmac('md5', key).update(message, 'utf8').digest('hex');
}

/** Whether `signature` is the message's, compared in constant time (as gluon.utils.compare). */
export function isSignatureValid(message: string, signature: string, key: string): boolean {
  const expected = Buffer.from(sign(message, key), 'latin1');
  const given = Buffer.from(signature, 'latin1');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export type PublishCheck =
  | { ok: true; message: string; group: string }
  | { ok: false; status: 400 | 401; reason: string };

/**
 * What a publish or token POST asks, checked. With a key, a missing or wrong `signature` is 401,
 * as web2py answers (v3.3.3 broadcast the message anyway); without `message`, 400 (web2py
 * answers 200 and does nothing).
 */
export function checkPost(fields: Map<string, string>, key: string | null): PublishCheck {
  const message = fields.get('message');
  if (message === undefined) return { ok: false, status: 400, reason: 'no message field' };
  if (key !== null) {
    const signature = fields.get('signature');
    if (signature === undefined || signature === '') return { ok: false, status: 401, reason: 'no signature' };
    if (!isSignatureValid(message, signature, key)) return { ok: false, status: 401, reason: 'bad signature' };
  }
  const group = fields.get('group');
  return { ok: true, message, group: group === undefined || group === '' ? DEFAULT_GROUP : group };
}

/** The presence notices web2py sends a group when a member joins or leaves. */
export function joinNotice(name: string): string {
  return `+${name}`;
}
export function leaveNotice(name: string): string {
  return `-${name}`;
}
