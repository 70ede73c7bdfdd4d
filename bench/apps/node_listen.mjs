// The raw Node.js servers' shared start (node_hello.mjs, node_static.mjs): plain HTTP/1.1, or with
// CERT and KEY HTTP/2 and HTTP/1.1 over TLS on one port (ALPN), as ours with -c/-k. HTTP/1.1 goes
// to `onRequest`, HTTP/2 streams to `onStream` on the raw Http2Stream (stream.respond) rather than
// through Node's compatibility layer. Idle keep-alive connections are kept 75 s, as ours'
// --keep-alive-timeout default (Node's own is 5 s), so the idle scenario compares the same held
// connections.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';

export function listen(port, cert, key, onRequest, onStream) {
  let server;
  if (cert === undefined) {
    server = http.createServer(onRequest);
  } else {
    server = http2.createSecureServer({ cert: readFileSync(cert), key: readFileSync(key), allowHTTP1: true });
    // HTTP/1.1 connections emit 'request'; adding that listener also makes Node answer HTTP/2
    // streams through its compatibility layer: that 'stream' listener is replaced by the raw one.
    server.on('request', onRequest);
    server.removeAllListeners('stream');
    server.on('stream', onStream);
  }
  server.keepAliveTimeout = 75_000;
  server.listen(Number(port), '127.0.0.1');
}
