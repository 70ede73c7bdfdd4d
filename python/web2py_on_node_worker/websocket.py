"""``environ['wsgi.websocket']``: gevent-websocket's WebSocket API, carried over the channel.

Put in the environ only for a REQUEST that came with FLAG_UPGRADE: a valid WebSocket handshake
the front can complete (as gevent-websocket sets it only for valid upgrade requests, apps test
``environ.get('wsgi.websocket')``). Nothing is sent to the client until the application uses the
socket: the first ``receive()``, ``send()`` or ``close()`` (or an explicit ``accept()``) sends
WS_ACCEPT and the front answers 101. An application that answers with an ordinary response
instead never upgrades: the front sends that response. After the upgrade, what the application
returns is ignored (as gevent-websocket does) and, when it returns, the front closes the socket
(1000) if it is still open. docs/protocol.md, "WebSockets", has the frames.

The API (gevent-websocket's ``geventwebsocket.websocket.WebSocket``):

- ``receive()`` -> str (text message), bytes (binary message), or None once the connection is
  closed (the client closed it, or went away); after that None, a further ``receive()`` raises
  WebSocketError, as gevent-websocket does;
- ``send(message, binary=None)``: a str is sent as text (UTF-8), bytes as binary unless
  ``binary=False``; raises WebSocketError once the connection is closed;
- ``close(code=1000, message=b'')``; ``closed``; ``path``, ``origin``, ``protocol``, ``version``,
  ``environ``.

Flow control both ways (docs/protocol.md): received messages are credited back to the front as
they are taken, so a client that sends faster than the application receives is held back by
TCP; ``send()`` waits while the front has a window's worth of this socket's messages unwritten,
as a blocking socket write waits for a slow client.
"""

from collections import deque

from .credit import ConsumedCredit
from .protocol import (
    FLAG_BINARY, FLAG_END, MAX_CLOSE_REASON_BYTES, MAX_PAYLOAD, WS_ACCEPT, WS_MESSAGE,
    encode_frame, encode_header, encode_ws_close,
)

#: Close codes an endpoint may send (RFC 6455 section 7.4).
_SENDABLE = frozenset(range(1000, 1004)) | frozenset(range(1007, 1015)) | frozenset(range(3000, 5000))


class WebSocketError(OSError):
    """The connection is closed (gevent-websocket's ``WebSocketError`` is a ``socket.error`` too)."""


class WebSocket:
    """One application WebSocket. The reader delivers under ``signals.lock``; the request's
    thread or greenlet calls the API."""

    def __init__(self, exchange, channel, signals, request_window):
        self._exchange = exchange
        self._channel = channel
        self._signals = signals
        self._messages = deque()
        #: (code, reason) once the front said the client's side closed
        self._closed_by_client = None
        self._is_closed_by_app = False
        self._has_reported_close = False
        #: the application answered with HTTP (or returned): accepting is no longer possible
        self._is_declined = False
        self.is_accepted = False
        self._credit = ConsumedCredit(channel, exchange.request_id, request_window)
        self.environ = None
        self.path = None
        self.origin = None
        self.protocol = None
        self.version = None

    def bind(self, environ):
        """Put this socket in the request's environ, as gevent-websocket does."""
        self.environ = environ
        self.path = environ.get('PATH_INFO')
        self.origin = environ.get('HTTP_ORIGIN')
        self.version = environ.get('HTTP_SEC_WEBSOCKET_VERSION')
        environ['wsgi.websocket_version'] = self.version
        environ['wsgi.websocket'] = self

    # --- reader side (the caller holds signals.lock)

    def deliver(self, data, flags):
        self._messages.append((data, bool(flags & FLAG_BINARY)))

    def deliver_close(self, code, reason):
        if self._closed_by_client is None:
            self._closed_by_client = (code, reason)

    # --- application side

    @property
    def closed(self):
        return self._closed_by_client is not None or self._is_closed_by_app

    @property
    def close_code(self):
        """The client's close code once it closed (1005: none given, 1006: it went away), else None."""
        closed = self._closed_by_client
        return closed[0] if closed is not None else None

    def accept(self, protocol=None):
        """Complete the handshake now (101), with ``protocol`` (one the client offered) or none."""
        if self.is_accepted:
            return
        response = self._exchange.response
        if self._is_declined or (response is not None and response.is_head_sent):
            raise WebSocketError('the request was answered with HTTP: it cannot become a WebSocket')
        payload = b''
        if protocol is not None:
            offered = [item.strip() for item in (self.environ or {}).get('HTTP_SEC_WEBSOCKET_PROTOCOL', '').split(',')]
            if protocol not in offered:
                raise ValueError('subprotocol %r was not offered by the client (%s)' % (protocol, ', '.join(offered)))
            payload = protocol.encode('latin-1')
        self._channel.send(encode_frame(WS_ACCEPT, 0, self._exchange.request_id, payload))
        self.is_accepted = True
        self.protocol = protocol

    def receive(self):
        self.accept()
        if self._is_closed_by_app or self._has_reported_close:
            raise WebSocketError('Connection is already closed')
        exchange = self._exchange
        signals = self._signals
        while True:
            with signals.lock:
                if self._messages:
                    data, is_binary = self._messages.popleft()
                    break
                if self._closed_by_client is not None or exchange.is_cancelled:
                    self._has_reported_close = True
                    return None
            self._send_credit()
            signals.wait_until(exchange, self._has_news)
        if self._credit.add(len(data)):
            self._send_credit()
        return data if is_binary else data.decode('utf-8')

    read_message = receive

    def send(self, message, binary=None):
        self.accept()
        if binary is None:
            binary = not isinstance(message, str)
        if isinstance(message, str):
            data = message.encode('utf-8')
        else:
            data = bytes(message)
            if not binary:
                data.decode('utf-8')  # UnicodeDecodeError: a text message must be UTF-8
        if len(data) > MAX_PAYLOAD:
            raise ValueError('a message of %d bytes is larger than %d' % (len(data), MAX_PAYLOAD))
        self._take_credit(len(data))
        header = encode_header(WS_MESSAGE, FLAG_BINARY if binary else 0, self._exchange.request_id, len(data))
        self._channel.send_parts([header, data])

    send_frame = send

    def close(self, code=1000, message=b''):
        """Close the connection (a no-op once closed). ``message``: the reason, str or bytes."""
        if code not in _SENDABLE:
            raise ValueError('close code %r may not be sent (RFC 6455 section 7.4)' % (code,))
        reason = message.encode('utf-8') if isinstance(message, str) else bytes(message)
        if len(reason) > MAX_CLOSE_REASON_BYTES:
            raise ValueError('a close reason is at most %d bytes' % MAX_CLOSE_REASON_BYTES)
        self.accept()
        if self.closed:
            return
        self._is_closed_by_app = True
        self._channel.send(encode_ws_close(0, self._exchange.request_id, code, reason))

    # --- the request runner

    def decline(self):
        """The application answered with HTTP: no upgrade any more."""
        self._is_declined = True

    def finish(self):
        """The application returned after accepting: its last word on the request (WS_CLOSE with END)."""
        self._is_declined = True
        self._channel.send(encode_ws_close(FLAG_END, self._exchange.request_id, 1000))

    # --- internals

    def _has_news(self):
        return self._messages or self._closed_by_client is not None or self._exchange.is_cancelled

    def _send_credit(self):
        self._credit.flush(self._closed_by_client is None)

    def _take_credit(self, size):
        """Wait until the front's window for this socket is open; take ``size`` bytes of it.

        A message may overrun the window (it is one frame); the next one waits for credit.
        """
        exchange = self._exchange
        signals = self._signals
        while True:
            with signals.lock:
                if self.closed or exchange.is_cancelled:
                    raise WebSocketError('Connection is already closed')
                if exchange.credit > 0:
                    exchange.credit -= size
                    return
            signals.wait_until(exchange, lambda: exchange.credit > 0 or self.closed or exchange.is_cancelled)

    def __repr__(self):
        return '<WebSocket %s %s>' % (self.path, 'closed' if self.closed else 'open' if self.is_accepted else 'offered')
