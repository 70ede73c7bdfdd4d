/**
 * @module front/raw-target-bytes.ts's hold on a connection's parser: Node keeps freed parsers for
 * new connections, so the wrapper it puts on one must go when its connection closes, or the parser
 * would keep the closed socket (and its last request and response) alive.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { test } from 'node:test';

import { acceptRawTargetBytes } from '../../src/front/raw-target-bytes.js';

type WithParser = Socket & { parser?: object | null };

async function listening(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

test('a closed connection leaves its parser without the wrapper', async () => {
  const server = createServer((_req, res) => { res.end('ok'); });
  acceptRawTargetBytes(server, false, 16 * 1024);
  const parsers: { parser: object; socket: Socket }[] = [];
  server.on('connection', (socket: WithParser) => { if (socket.parser != null) parsers.push({ parser: socket.parser, socket }); });
  const port = await listening(server);
  try {
    const client = connect(port, '127.0.0.1');
    client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await once(client, 'data');
    assert.equal(parsers.length, 1);
    const { parser, socket } = parsers[0]!;
    assert.ok(Object.hasOwn(parser, 'execute'), 'the open connection\'s parser has the wrapper');
    client.end();
    await once(socket, 'close');
    assert.ok(!Object.hasOwn(parser, 'execute'), 'the freed parser is back to its own execute');
  } finally {
    server.close();
    server.closeAllConnections();
  }
});
