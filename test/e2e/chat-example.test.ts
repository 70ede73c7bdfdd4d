/**
 * The chat example (examples/chat/chat.py) runs as the README says: the page, a room within one
 * worker process over the app's own WebSockets, and a room across worker processes through the
 * realtime hub (the app publishes with websocket_send; pages join the hub's group).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { repoRoot, startServer, type StartedServer } from '../helpers/server.js';

const folder = join(repoRoot, 'examples', 'chat');

async function open(server: StartedServer, path: string): Promise<{ ws: WebSocket; next: () => Promise<string> }> {
  const ws = new WebSocket(server.url(path).replace(/^http/, 'ws'));
  const queue: string[] = [];
  let wake: (() => void) | null = null;
  ws.on('message', (data: Buffer) => {
    queue.push(data.toString());
    wake?.();
  });
  await once(ws, 'open');
  const next = async (): Promise<string> => {
    while (queue.length === 0) await new Promise<void>((resolve) => { wake = resolve; });
    return queue.shift()!;
  };
  return { ws, next };
}

test('chat example: the page, and a message broadcast to every tab of the worker', async () => {
  const server = await startServer(['--app', 'chat:app', '-f', folder, '--processes', '1']);
  try {
    const page = await fetch(server.url('/'));
    assert.equal(page.status, 200);
    assert.match(await page.text(), /new WebSocket\(scheme \+ location\.host \+ '\/ws'\)/);
    const ann = await open(server, '/ws');
    const bob = await open(server, '/ws');
    ann.ws.send(JSON.stringify({ name: 'ann', text: 'hello' }));
    assert.deepEqual(JSON.parse(await bob.next()), { name: 'ann', text: 'hello' });
    assert.deepEqual(JSON.parse(await ann.next()), { name: 'ann', text: 'hello' });
    ann.ws.send('not json: ignored');
    bob.ws.send(JSON.stringify({ name: 'bob', text: 'hi ann' }));
    assert.deepEqual(JSON.parse(await ann.next()), { name: 'bob', text: 'hi ann' });
    ann.ws.close();
    bob.ws.close();
  } finally {
    await server.stop();
  }
});

test('chat example with the realtime hub: a message reaches the group across worker processes', async () => {
  const server = await startServer(['--app', 'chat:app', '-f', folder, '--processes', '2', '--realtime-key', 'chat-key'], {
    env: { CHAT_HUB: '/_ws/', CHAT_KEY: 'chat-key' },
  });
  try {
    const page = await (await fetch(server.url('/'))).text();
    assert.match(page, /var hub = true;/);
    const listener = await open(server, '/_ws/realtime/chat');
    const sender = await open(server, '/ws');
    sender.ws.send(JSON.stringify({ name: 'ann', text: 'to everyone' }));
    assert.deepEqual(JSON.parse(await listener.next()), { name: 'ann', text: 'to everyone' });
    listener.ws.close();
    sender.ws.close();
  } finally {
    await server.stop();
  }
});
