/**
 * Many hostile connections at once while a normal client is served (issue 11): what one client
 * may do in bulk must not take the server from the others. Counts and order are asserted, not
 * timings; the normal client's latencies are printed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { request } from 'node:http';
import { fixtures, startServer } from '../helpers/server.js';

const apps = join(fixtures, 'apps');
const SLOW_CLIENTS = 2_000;

function get(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

function openSlow(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write('GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: '); // and never the rest
      resolve(socket);
    });
    socket.on('error', reject);
  });
}

test(`${SLOW_CLIENTS} slowloris connections held open: a normal client is served meanwhile (their 408 at --headers-timeout: limits.test.ts)`, async () => {
  const server = await startServer(['--app', 'suite:app', '-f', apps, '--processes', '1', '--headers-timeout', '20']);
  const slow: Socket[] = [];
  try {
    for (let i = 0; i < SLOW_CLIENTS; i += 50) slow.push(...await Promise.all(Array.from({ length: 50 }, () => openSlow(server.port))));
    let closedEarly = 0;
    for (const socket of slow) socket.on('close', () => { closedEarly += 1; });
    const latencies: number[] = [];
    for (let i = 0; i < 20; i += 1) {
      const started = performance.now();
      assert.equal(await get(server.port, '/hello'), 200);
      latencies.push(performance.now() - started);
    }
    // Served while every slow connection was still held open (their 20 s had not run out).
    assert.equal(closedEarly, 0, 'no slow connection was cut before the normal client was served');
    latencies.sort((a, b) => a - b);
    console.log(`${SLOW_CLIENTS} slowloris connections held: normal client median ${latencies[10]!.toFixed(1)} ms, max ${latencies[19]!.toFixed(1)} ms`);
  } finally {
    for (const socket of slow) socket.destroy();
    assert.equal(await server.stop(), 0);
  }
});
