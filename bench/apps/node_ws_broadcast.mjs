// The limit for the realtime scenario: a minimal `ws` broadcast server, web2py's wire protocol
// without signatures, tokens, presence or limits. POST / with message & group; /realtime/<group> joins.
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';

const groups = new Map();
const server = createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk) => { body += chunk; });
  req.on('end', () => {
    const fields = new URLSearchParams(body);
    const data = Buffer.from(fields.get('message') ?? '');
    for (const ws of groups.get(fields.get('group') ?? 'default') ?? []) ws.send(data, { binary: false });
    res.end();
  });
});
const wss = new WebSocketServer({ server });
wss.on('connection', (ws, req) => {
  const group = (req.url ?? '').split('/')[2] || 'default';
  if (!groups.has(group)) groups.set(group, new Set());
  groups.get(group).add(ws);
  ws.on('close', () => groups.get(group).delete(ws));
});
server.listen(Number(process.argv[2]), '127.0.0.1');
