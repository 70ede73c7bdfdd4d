// Raw Node.js hello world: the upper limit of an HTTP front end on this machine.
// Same body as hello.py so the two are compared byte for byte.
// Usage: node node_hello.mjs PORT [CERT KEY]
// Idle keep-alive connections are kept 75 s, as ours' --keep-alive-timeout default (Node's own
// is 5 s), so the idle scenario compares the same held connections. With CERT and KEY: HTTP/2 and
// HTTP/1.1 over TLS on one port (ALPN), as ours with -c/-k, HTTP/2 streams answered on the raw
// Http2Stream (stream.respond) rather than through Node's compatibility layer.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';

const [port, cert, key] = process.argv.slice(2);
const BODY = 'Hello, World!';
const onRequest = (req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': BODY.length });
  res.end(BODY);
};
if (cert === undefined) {
  const server = http.createServer(onRequest);
  server.keepAliveTimeout = 75_000;
  server.listen(Number(port), '127.0.0.1');
} else {
  const server = http2.createSecureServer({ cert: readFileSync(cert), key: readFileSync(key), allowHTTP1: true });
  // HTTP/1.1 connections emit 'request'; adding that listener also makes Node answer HTTP/2
  // streams through its compatibility layer: that 'stream' listener is replaced by the raw one.
  server.on('request', onRequest);
  server.removeAllListeners('stream');
  server.on('stream', (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'text/plain', 'content-length': BODY.length });
    stream.end(BODY);
  });
  server.keepAliveTimeout = 75_000;
  server.listen(Number(port), '127.0.0.1');
}
