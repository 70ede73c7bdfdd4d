"""Publishing to the realtime hub from Python: web2py's ``websocket_send``, working on Python 3.

web2py's ``gluon.contrib.websocket_messaging.websocket_send`` passes a ``str`` body to
``urlopen``, which raises ``TypeError`` on Python 3. These functions post the same fields
(``message``, ``signature`` = hex HMAC-MD5 of the message with the key, ``group``) as UTF-8
bytes, to the hub under the front's ``--realtime-prefix`` (``http://127.0.0.1:8000/_ws/``) or
to ``--realtime-port`` (``http://127.0.0.1:8888``), or to web2py's own Tornado server. An
application switches with one import::

    from web2py_on_node_worker.realtime import websocket_send
    websocket_send('http://127.0.0.1:8000/_ws/', 'Hello', 'mykey', 'mygroup')

Inside a worker of this server, ``publish(message, group)`` hands the message to the hub over
the worker's own channel (a PUBLISH frame, docs/protocol.md): no HTTP request, no key, no
signature (the channel is trusted), and it reaches every front and, with ``--realtime-redis``,
every instance, as a POST would::

    from web2py_on_node_worker.realtime import publish
    publish('Hello', 'mygroup')

Stdlib only; importable outside the worker too (copy it next to the app if the package is not
on its path). The worker imports this module at start, so the HTTP and HMAC modules are
imported only when a function needs them.
"""

import threading

__all__ = ["publish", "websocket_send", "websocket_token", "sign"]

# Set by the worker once its channel is up (attach); None elsewhere.
_channel = None
_max_message = 0
_attach_lock = threading.Lock()


def attach(channel, max_message):
    """The worker's channel and the largest message the hub takes (0: the hub is off)."""
    global _channel, _max_message
    with _attach_lock:
        _channel, _max_message = channel, max_message


def publish(message, group="default"):
    """Publishes ``message`` (str or UTF-8 bytes) to ``group`` through this worker's channel.

    Returns at once; the front delivers it to the group's members on every front (and every
    instance with ``--realtime-redis``). Raises ``RuntimeError`` outside a worker of this server
    (or before it serves: during the application's import) and when the hub is off (start the
    server with ``--realtime-key`` or ``--realtime-prefix``), ``ValueError`` for a message over
    ``--realtime-max-message`` or a group that is empty or over 255 bytes.
    """
    from .protocol import encode_publish
    channel, limit = _channel, _max_message
    if channel is None:
        raise RuntimeError("publish() works in a web2py-on-node worker once it serves; elsewhere use websocket_send(url, ...)")
    if limit == 0:
        raise RuntimeError("the realtime hub is off: start the server with --realtime-key (or --realtime-prefix)")
    data = message.encode("utf-8") if isinstance(message, str) else bytes(message)
    data.decode("utf-8")  # UnicodeDecodeError (a ValueError) for bytes that are not UTF-8
    if len(data) > limit:
        raise ValueError("a message of %d bytes, over --realtime-max-message (%d)" % (len(data), limit))
    channel.send(encode_publish(_text(group).encode("utf-8"), data))


def _text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def sign(message, hmac_key):
    """Hex HMAC-MD5 of ``message`` with ``hmac_key`` (empty without a key, as web2py)."""
    import hashlib
    import hmac
    if not hmac_key:
        return ""
    key = hmac_key.encode("utf-8") if isinstance(hmac_key, str) else hmac_key
    return hmac.new(key, _text(message).encode("utf-8"), hashlib.md5).hexdigest()


def _post(url, fields, timeout):
    from urllib.parse import urlencode
    from urllib.request import Request, urlopen
    body = urlencode(fields).encode("ascii")
    request = Request(url, data=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urlopen(request, timeout=timeout) as response:
        return response.read()


def websocket_send(url, message, hmac_key=None, group="default", timeout=10):
    """Publishes ``message`` to ``group``; returns the answer's body (empty). Raises ``urllib.error.HTTPError`` when refused (401: bad signature)."""
    message = _text(message)
    return _post(url, {"message": message, "signature": sign(message, hmac_key), "group": _text(group)}, timeout)


def websocket_token(url, token, hmac_key=None, timeout=10):
    """Arms ``token`` for one join (``--realtime-tokens``); ``url`` is the publish URL (``.../_ws/``), ``token`` is posted to its ``token`` path."""
    token = _text(token)
    return _post(url.rstrip("/") + "/token", {"message": token, "signature": sign(token, hmac_key)}, timeout)
