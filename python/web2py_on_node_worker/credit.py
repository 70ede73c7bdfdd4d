"""Credit for what the application has consumed: the worker's side of flow control.

The front may have at most a window of un-credited bytes in flight for a request: its body
(``wsgi.input``, body.py) or its WebSocket's messages (websocket.py). Both give what the
application consumed back to the front as CREDIT frames, in batches of a quarter window, and
always before the application waits for more (otherwise both sides would wait on each other).
docs/protocol.md, "Flow control".
"""

from .protocol import encode_credit


class ConsumedCredit:
    """Bytes one request's application consumed and not yet credited to the front."""

    __slots__ = ('_channel', '_request_id', '_batch', '_pending')

    def __init__(self, channel, request_id, window):
        self._channel = channel
        self._request_id = request_id
        self._batch = max(1, window // 4)
        self._pending = 0

    def add(self, size):
        """``size`` more bytes were consumed -> whether a batch is due (then call flush)."""
        self._pending += size
        return self._pending >= self._batch

    def flush(self, is_wanted):
        """Credit what is pending, if the front still wants credit (``is_wanted``); either way
        nothing is pending after."""
        if self._pending and is_wanted:
            self._channel.send(encode_credit(self._request_id, self._pending))
        self._pending = 0
