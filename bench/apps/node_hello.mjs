// Raw Node.js hello world: the upper limit of an HTTP front end on this machine.
// Same body as hello.py so the two are compared byte for byte.
// Usage: node node_hello.mjs PORT [CERT KEY] (with CERT and KEY: HTTP/2 and HTTP/1.1 over TLS,
// HTTP/2 on the raw stream; node_listen.mjs).
import { listen } from './node_listen.mjs';

const [port, cert, key] = process.argv.slice(2);
const BODY = 'Hello, World!';
listen(port, cert, key, (req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': BODY.length });
  res.end(BODY);
}, (stream) => {
  stream.respond({ ':status': 200, 'content-type': 'text/plain', 'content-length': BODY.length });
  stream.end(BODY);
});
