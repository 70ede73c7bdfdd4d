"""Publishing to the realtime hub from Python: web2py's ``websocket_send``, working on Python 3.

web2py's ``gluon.contrib.websocket_messaging.websocket_send`` passes a ``str`` body to
``urlopen``, which raises ``TypeError`` on Python 3. These functions post the same fields
(``message``, ``signature`` = hex HMAC-MD5 of the message with the key, ``group``) as UTF-8
bytes, to the hub under the front's ``--realtime-prefix`` (``http://127.0.0.1:8000/_ws/``) or
to ``--realtime-port`` (``http://127.0.0.1:8888``), or to web2py's own Tornado server. An
application switches with one import::

    from web2py_on_node_worker.realtime import websocket_send
    websocket_send('http://127.0.0.1:8000/_ws/', 'Hello', 'mykey', 'mygroup')

Stdlib only; importable outside the worker too (copy it next to the app if the package is not
on its path).
"""

import hashlib
import hmac
from urllib.parse import urlencode
from urllib.request import Request, urlopen

__all__ = ["websocket_send", "websocket_token", "sign"]


def _text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def sign(message, hmac_key):
    """Hex HMAC-MD5 of ``message`` with ``hmac_key`` (empty without a key, as web2py)."""
    if not hmac_key:
        return ""
    key = hmac_key.encode("utf-8") if isinstance(hmac_key, str) else hmac_key
    return hmac.new(key, _text(message).encode("utf-8"), hashlib.md5).hexdigest()


def _post(url, fields, timeout):
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
