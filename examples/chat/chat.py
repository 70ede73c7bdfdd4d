"""A chat room: a WSGI app using ``environ['wsgi.websocket']`` (gevent-websocket's API).

Run it from the repository's root::

    node dist/cli/main.js --app chat:app -f examples/chat --processes 1

and open http://127.0.0.1:8000/ in two browser tabs. The page opens a WebSocket to ``/ws``; each
message a tab sends is broadcast to every socket this worker process holds.

The limitation: ``clients`` below is one process's memory, and each open socket holds one of its
worker slots (a thread or greenlet; ``-w`` and ``--threads`` bound how many are open at once). With
several worker processes (``--processes``, or several fronts) a message reaches only the tabs
connected to the same process. For a room across every worker, front and machine, combine it
with the front's realtime hub, which holds no worker slot per client::

    CHAT_HUB=/_ws/ CHAT_KEY=secret \\
        node dist/cli/main.js --app chat:app -f examples/chat --realtime-key secret

(``CHAT_HUB``: the hub's publish URL, e.g. ``http://127.0.0.1:8000/_ws/``; a path alone means this
server, on the port the request came to.)

Then the page receives from the hub's group (``/_ws/realtime/chat``) and still sends over ``/ws``,
where the app can check, store or reject a message before it publishes it to the hub with
``websocket_send`` (web2py's own call, made to work on Python 3 by this package).
"""

import json
import os
import threading

try:
    from web2py_on_node_worker.realtime import websocket_send
except ImportError:  # pragma: no cover - served by another server
    websocket_send = None

HUB = os.environ.get('CHAT_HUB')
KEY = os.environ.get('CHAT_KEY')
MAX_TEXT = 500

#: the open sockets of this worker process
clients = set()
clients_lock = threading.Lock()

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>chat</title>
<style>body{font:16px sans-serif;margin:2em}#log{list-style:none;padding:0}</style></head>
<body><h1>chat</h1>
<form id="form"><input id="name" placeholder="name" size="10"> <input id="text" size="40" autofocus>
<button>send</button></form>
<ul id="log"></ul>
<script>
var hub = %(hub)s;
var scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
function show(line) {
  var li = document.createElement('li');
  li.textContent = line;
  document.getElementById('log').prepend(li);
}
function received(event) {
  var m;
  try { m = JSON.parse(event.data); } catch (e) { return; }  // the hub's +name/-name notices
  show(m.name + ': ' + m.text);
}
var sender;
function connect() {
  sender = new WebSocket(scheme + location.host + '/ws');
  if (!hub) sender.onmessage = received;
  sender.onclose = function () { setTimeout(connect, 1000); };  // reconnect
}
connect();
if (hub) {
  (function join() {
    var listener = new WebSocket(scheme + location.host + '/_ws/realtime/chat');
    listener.onmessage = received;
    listener.onclose = function () { setTimeout(join, 1000); };
  })();
}
document.getElementById('form').onsubmit = function (e) {
  e.preventDefault();
  var text = document.getElementById('text');
  sender.send(JSON.stringify({name: document.getElementById('name').value || 'anonymous', text: text.value}));
  text.value = '';
};
</script></body></html>
"""


def app(environ, start_response):
    path = environ.get('PATH_INFO', '/')
    if path == '/ws':
        ws = environ.get('wsgi.websocket')
        if ws is None:
            return answer(start_response, '400 Bad Request', 'text/plain', 'a WebSocket endpoint')
        return chat(ws, hub_url(environ))
    if path == '/':
        return answer(start_response, '200 OK', 'text/html; charset=utf-8', PAGE % {'hub': 'true' if HUB else 'false'})
    return answer(start_response, '404 Not Found', 'text/plain', 'not found')


def hub_url(environ):
    """Where to publish (None: no hub, this process only)."""
    if not HUB or websocket_send is None:
        return None
    if HUB.startswith('/'):
        return 'http://127.0.0.1:%s%s' % (environ['SERVER_PORT'], HUB)
    return HUB


def chat(ws, hub):
    with clients_lock:
        clients.add(ws)
    try:
        while True:
            message = ws.receive()
            if message is None:
                return []
            line = checked(message)
            if line is not None:
                publish(line, hub)
    finally:
        with clients_lock:
            clients.discard(ws)


def checked(message):
    """The message as the room shows it, or None when it is not a chat message."""
    try:
        data = json.loads(message)
        name, text = str(data['name'])[:40], str(data['text'])[:MAX_TEXT]
    except (ValueError, KeyError, TypeError):
        return None
    if not text.strip():
        return None
    return json.dumps({'name': name, 'text': text})


def publish(line, hub):
    if hub is not None:
        websocket_send(hub, line, KEY, 'chat')  # every tab of every worker, front and instance
        return
    with clients_lock:
        members = list(clients)
    # send() waits while a tab's window is full: a tab that reads nothing holds this loop back
    # until the keep-alive closes it (--realtime-ping-interval). The hub never waits for a member.
    for member in members:
        try:
            member.send(line)
        except OSError:  # WebSocketError: that tab is gone
            with clients_lock:
                clients.discard(member)


def answer(start_response, status, content_type, text):
    body = text.encode('utf-8')
    start_response(status, [('Content-Type', content_type), ('Content-Length', str(len(body)))])
    return [body]
