// Raw Node.js hello world: the upper limit of an HTTP front end on this machine.
// Same body as hello.py so the two are compared byte for byte.
// Usage: node node_hello.mjs PORT
// Idle keep-alive connections are kept 75 s, as ours' --keep-alive-timeout default (Node's own
// is 5 s), so the idle scenario compares the same held connections.
import http from 'node:http';

const port = Number(process.argv[2]);
const BODY = 'Hello, World!';
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': BODY.length });
  res.end(BODY);
});
server.keepAliveTimeout = 75_000;
server.listen(port, '127.0.0.1');
