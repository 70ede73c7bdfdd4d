"""Where each frame from the front goes, once the worker is READY.

The reader (one thread, greenlet, or the sync loop) calls ``dispatch()`` with decoded frames:
REQUEST makes an Exchange and hands it to the executor; BODY, CREDIT, CANCEL and FILE_OPENED
update their exchange and wake the thread running it; BODY_FILE is opened here and answered
with FILE_OPENED (body.py); PING is answered; SHUTDOWN starts the drain. Frames for ids no
longer running are dropped: they are late, not wrong (the front does the same). Frames the
front never sends raise ProtocolError (W2N_ERR_PROTO_UNEXPECTED).
"""

import os

from .body import InputStream, open_body_file
from .exchange import Exchange
from .protocol import (
    BODY, BODY_FILE, CANCEL, CREDIT, ERR_NOT_READY, ERR_PROTO_UNEXPECTED, FILE_OPENED, FLAG_END,
    FLAG_TIMEOUT, FLAG_UPGRADE, FRAME_NAMES, PING, PONG, REQUEST, SHUTDOWN, WS_CLOSE, WS_MESSAGE,
    ProtocolError, decode_body_file, decode_u32, decode_ws_close, encode_file_opened, encode_frame,
)
from .websocket import WebSocket
from .wsgi import send_error


#: frames that may come for a request that already ended: dropped
_LATE_FRAMES = frozenset((BODY, BODY_FILE, CANCEL, CREDIT, FILE_OPENED, WS_MESSAGE, WS_CLOSE))


class Router:
    """Routes frames to exchanges; knows which requests are running and whether it drains."""

    def __init__(self, channel, signals, submit, request_window, response_window):
        self._channel = channel
        self._signals = signals
        self._submit = submit
        self._request_window = request_window
        self._response_window = response_window
        #: request id -> Exchange, from REQUEST until the runner is done with it
        self.exchanges = {}
        self.is_draining = False
        #: called (from any thread) once draining and nothing runs any more
        self.on_drained = None
        #: called on CANCEL with the exchange and whether FLAG_TIMEOUT is set (the executor sets it: interrupt.py)
        self.interrupt = None

    @property
    def is_drained(self):
        return self.is_draining and not self.exchanges

    def dispatch(self, frames):
        for frame_type, flags, request_id, payload in frames:
            if frame_type == REQUEST:
                self._start(flags, request_id, payload)
                continue
            if request_id == 0:
                self._control(frame_type, payload)
                continue
            exchange = self.exchanges.get(request_id)
            if exchange is None:
                if frame_type in _LATE_FRAMES:
                    continue  # late: the request already ended
                self._unexpected(frame_type, 'request %d not running' % request_id)
            signals = self._signals
            if frame_type == BODY and exchange.body is not None:
                with signals.lock:
                    exchange.body.deliver(payload, flags & FLAG_END)
                    signals.notify(exchange)
            elif frame_type == BODY_FILE and exchange.body is not None:
                self._open_body_file(exchange, payload)
            elif frame_type == CREDIT:
                with signals.lock:
                    exchange.credit += decode_u32(payload)
                    signals.notify(exchange)
            elif frame_type == CANCEL:
                if self.interrupt is not None:
                    # Cancels it, stops it, and its last word frees its slot in the front.
                    self.interrupt(exchange, bool(flags & FLAG_TIMEOUT))
                    continue
                with signals.lock:
                    exchange.is_cancelled = True
                    signals.notify(exchange)
            elif frame_type == WS_MESSAGE and exchange.websocket is not None:
                with signals.lock:
                    exchange.websocket.deliver(payload, flags)
                    signals.notify(exchange)
            elif frame_type == WS_CLOSE and exchange.websocket is not None:
                with signals.lock:
                    exchange.websocket.deliver_close(*decode_ws_close(payload))
                    signals.notify(exchange)
            elif frame_type == FILE_OPENED:
                with signals.lock:
                    exchange.file_opened = payload[:1] == b'\x01'
                    signals.notify(exchange)
            elif frame_type != BODY:
                self._unexpected(frame_type, 'running')

    def _open_body_file(self, exchange, payload):
        """BODY_FILE: open the front's file of the whole body and tell it whether we could (if
        not, it streams the body as BODY frames)."""
        layout = decode_body_file(payload)
        if layout is None:
            self._unexpected(BODY_FILE, 'payload of %d bytes' % len(payload))
        fd = open_body_file(*layout)
        is_open = False
        if fd is not None:
            with self._signals.lock:
                # Done meanwhile (finish() released the body, or it answered already): not needed.
                response = exchange.response
                if self.exchanges.get(exchange.request_id) is exchange and (response is None or not response.is_complete):
                    is_open = exchange.body.attach_file(fd, layout[2])
                if is_open:
                    self._signals.notify(exchange)
            if not is_open:
                os.close(fd)
        self._channel.send(encode_file_opened(exchange.request_id, is_open))

    def finish(self, exchange):
        """The runner is done with ``exchange``: forget it (later frames for its id are dropped)."""
        self.exchanges.pop(exchange.request_id, None)
        body = exchange.body
        if body is not None:
            with self._signals.lock:
                body.release()
        if self.is_draining and not self.exchanges and self.on_drained is not None:
            self.on_drained()

    def _start(self, flags, request_id, payload):
        if request_id == 0 or request_id in self.exchanges:
            self._unexpected(REQUEST, 'request id %d in use' % request_id)
        if self.is_draining:
            # SHUTDOWN came first: the front should not have sent this; it may retry elsewhere.
            send_error(self._channel, request_id, ERR_NOT_READY, 'the worker is shutting down')
            return
        exchange = Exchange(request_id, payload, self._response_window)
        if not flags & FLAG_END:
            exchange.body = InputStream(exchange, self._signals, self._channel, self._request_window)
        elif flags & FLAG_UPGRADE:
            exchange.websocket = WebSocket(exchange, self._channel, self._signals, self._request_window)
        self.exchanges[request_id] = exchange
        self._submit(exchange)

    def _control(self, frame_type, payload):
        if frame_type == PING:
            self._channel.send(encode_frame(PONG, 0, 0, payload))
        elif frame_type == SHUTDOWN:
            self.is_draining = True
            if not self.exchanges and self.on_drained is not None:
                self.on_drained()
        else:
            self._unexpected(frame_type, 'ready')

    @staticmethod
    def _unexpected(frame_type, state):
        raise ProtocolError(ERR_PROTO_UNEXPECTED, 'unexpected frame %s in state %s'
                            % (FRAME_NAMES.get(frame_type, frame_type), state))
