// Raw Node.js hello world: the upper limit of an HTTP front end on this machine.
// Same body as hello.py so the two are compared byte for byte.
// Usage: node node_hello.mjs PORT
import http from 'node:http';

const port = Number(process.argv[2]);
const BODY = 'Hello, World!';
http
  .createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': BODY.length });
    res.end(BODY);
  })
  .listen(port, '127.0.0.1');
