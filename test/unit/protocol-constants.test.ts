/**
 * One set of protocol constants in three places: src/protocol/frames.ts, the Python worker's
 * protocol.py and docs/protocol.md. This test fails when any of them drifts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WORKER_EVENTS, WORKER_EVENT_PREFIX } from '../../src/pool/output-relay.js';
import { FLAG_BINARY, FLAG_END, FLAG_TIMEOUT, FLAG_UPGRADE, FrameType, HANDSHAKE_KEYS, HEADER_BYTES, MAX_CHUNK, MAX_PAYLOAD, PROTOCOL_VERSION } from '../../src/protocol/frames.js';

const root = join(import.meta.dirname, '..', '..');

test('protocol.py has the same constants as frames.ts', () => {
  const script = `
import json, sys
sys.path.insert(0, ${JSON.stringify(join(root, 'python'))})
from web2py_on_node_worker import protocol as p
names = ${JSON.stringify(Object.keys(FrameType))}
print(json.dumps({"types": {n: getattr(p, n) for n in names},
  "PROTOCOL_VERSION": p.PROTOCOL_VERSION, "HEADER_BYTES": p.HEADER_BYTES, "MAX_PAYLOAD": p.MAX_PAYLOAD,
  "MAX_CHUNK": p.MAX_CHUNK, "FLAG_END": p.FLAG_END, "FLAG_TIMEOUT": p.FLAG_TIMEOUT, "FLAG_UPGRADE": p.FLAG_UPGRADE, "FLAG_BINARY": p.FLAG_BINARY,
  "HANDSHAKE_KEYS": list(p.HANDSHAKE_KEYS)}))`;
  const python = JSON.parse(execFileSync('python3', ['-c', script], { encoding: 'utf8' })) as Record<string, unknown>;
  assert.deepEqual(python, {
    types: { ...FrameType }, PROTOCOL_VERSION, HEADER_BYTES, MAX_PAYLOAD, MAX_CHUNK, FLAG_END, FLAG_TIMEOUT, FLAG_UPGRADE, FLAG_BINARY,
    HANDSHAKE_KEYS: [...HANDSHAKE_KEYS],
  });
});

test('docs/protocol.md shows HANDSHAKE with exactly the declared keys', () => {
  const doc = readFileSync(join(root, 'docs', 'protocol.md'), 'utf8');
  const section = /### HANDSHAKE[^\n]*\n+```json\n([\s\S]*?)```/.exec(doc);
  assert.ok(section, 'a JSON example under ### HANDSHAKE');
  // Top-level keys only: the app object's own keys (kind, folder, spec, cwd) are not HANDSHAKE's.
  const topLevel = (section[1] ?? '').replace(/\{"kind"[^}]*\}/g, '{}');
  const keys = [...topLevel.matchAll(/"(\w+)":/g)].map((m) => m[1]);
  assert.deepEqual([...new Set(keys)].sort(), [...HANDSHAKE_KEYS].sort());
});

test('the worker\'s log events (events.py) are the ones the front declares (output-relay.ts)', () => {
  const script = `
import json, sys
sys.path.insert(0, ${JSON.stringify(join(root, 'python'))})
from web2py_on_node_worker import events
print(json.dumps({"PREFIX": events.PREFIX, "EVENTS": list(events.EVENTS)}))`;
  const python = JSON.parse(execFileSync('python3', ['-c', script], { encoding: 'utf8' })) as Record<string, unknown>;
  assert.deepEqual(python, { PREFIX: WORKER_EVENT_PREFIX, EVENTS: [...WORKER_EVENTS] });
});

test('docs/protocol.md lists every frame type with its code, and the limits', () => {
  const doc = readFileSync(join(root, 'docs', 'protocol.md'), 'utf8');
  for (const [name, code] of Object.entries(FrameType)) {
    const row = new RegExp(`\\| 0x${code.toString(16).padStart(2, '0')} \\| \`${name}\` \\|`);
    assert.match(doc, row, `${name} = 0x${code.toString(16)} in the frame table`);
  }
  const documentedTypes = [...doc.matchAll(/^\| 0x[0-9a-f]{2} \| `(\w+)` \|/gm)].map((m) => m[1]);
  assert.deepEqual(documentedTypes.sort(), Object.keys(FrameType).sort(), 'no extra types in the doc');
  assert.match(doc, new RegExp(`\`HEADER_BYTES\` \\| ${HEADER_BYTES} \\|`));
  assert.match(doc, new RegExp(`\`MAX_PAYLOAD\` \\| ${MAX_PAYLOAD.toLocaleString('en-US')} \\|`));
  assert.match(doc, new RegExp(`\`MAX_CHUNK\` \\| ${MAX_CHUNK.toLocaleString('en-US')} \\|`));
  assert.match(doc, new RegExp(`\`PROTOCOL_VERSION\` \\| ${PROTOCOL_VERSION} \\|`));
});
