// Raw Node.js answering one static file from memory, with the headers ours gives a cached hit
// (Server, X-Request-ID, web2py's X-Powered-By / Cache-Control / Pragma, Accept-Ranges,
// Last-Modified, ETag, Content-Type, Content-Length): the floor under ours' front for the static
// scenarios. Every path gets the file; no conditional requests, ranges or checks of any kind.
// The request id is a fixed string of a UUID's length: the same bytes on the wire, no work.
// Usage: node node_static.mjs PORT FILE [CERT KEY]
// With CERT and KEY: HTTP/2 and HTTP/1.1 over TLS on one port (ALPN), as ours with -c/-k; HTTP/2
// streams are answered on the raw Http2Stream (stream.respond), HTTP/1.1 with http's response (node_listen.mjs).
import { readFileSync, statSync } from 'node:fs';
import { listen } from './node_listen.mjs';

const [port, file, cert, key] = process.argv.slice(2);
const body = readFileSync(file);
const stats = statSync(file);
const fields = {
  Server: 'web2py-on-node',
  'X-Request-ID': '00000000-0000-4000-8000-000000000000',
  'X-Powered-By': 'web2py',
  'Cache-Control': 'private',
  Pragma: 'cache',
  'Accept-Ranges': 'bytes',
  'Last-Modified': stats.mtime.toUTCString(),
  ETag: `W/"${stats.size.toString(16)}-${stats.mtime.getTime().toString(16)}"`,
  'Content-Type': file.endsWith('.css') ? 'text/css; charset=utf-8' : 'application/octet-stream',
  'Content-Length': body.length,
};
const flat = Object.entries(fields).flat().map(String);

const h2Headers = { ':status': 200 };
for (const [name, value] of Object.entries(fields)) h2Headers[name.toLowerCase()] = value;

listen(port, cert, key, (req, res) => {
  res.writeHead(200, flat);
  res.end(req.method === 'HEAD' ? undefined : body);
}, (stream, headers) => {
  stream.respond(h2Headers, { endStream: headers[':method'] === 'HEAD' });
  if (headers[':method'] !== 'HEAD') stream.end(body);
});
