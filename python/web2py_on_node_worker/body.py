"""``wsgi.input``: the request body, fed by BODY frames, crediting the front as it is read.

Flow control (docs/protocol.md, "Flow control"): the front may have at most ``requestWindow``
un-credited body bytes in flight. This stream credits what the application has consumed
(credit.py: in batches of a quarter window, and always before it waits for more). Nothing is
credited once the last BODY frame has arrived.
"""

from collections import deque

from .credit import ConsumedCredit


class ClientDisconnected(OSError):
    """The front cancelled the request (the client went away or a deadline passed)."""

    def __init__(self):
        super().__init__('client disconnected')


class InputStream:
    """A file-like, read-only view of the request body (PEP 3333 ``wsgi.input``).

    ``read(n)`` returns exactly n bytes unless the body ends first; ``read()`` returns the rest.
    Only the application thread reads; only the reader thread delivers (under ``signals.lock``).
    """

    def __init__(self, exchange, signals, channel, request_window):
        self._exchange = exchange
        self._signals = signals
        self._chunks = deque()
        #: read position inside self._chunks[0]
        self._offset = 0
        self._buffered = 0
        self._has_all = False
        self._credit = ConsumedCredit(channel, exchange.request_id, request_window)

    # --- reader side (the caller holds signals.lock)

    def deliver(self, data, is_last):
        if data:
            self._chunks.append(data)
            self._buffered += len(data)
        if is_last:
            self._has_all = True

    # --- application side

    def _size_or_empty(self, size):
        """PEP 3333 sizes: None or negative means all (-1); 0 means an empty read (None returned)."""
        if size is None or size < 0:
            return -1
        if size == 0:
            self._check_cancelled()
            return None
        return size

    def read(self, size=-1):
        size = self._size_or_empty(size)
        if size is None:
            return b''
        parts = []
        while size and self._fill():
            part = self._take(size)
            parts.append(part)
            if size > 0:
                size -= len(part)
        return parts[0] if len(parts) == 1 else b''.join(parts)

    def readline(self, size=-1):
        size = self._size_or_empty(size)
        if size is None:
            return b''
        parts = []
        while size and self._fill():
            chunk = self._chunks[0]
            start = self._offset
            stop = len(chunk) if size < 0 else min(len(chunk), start + size)
            newline = chunk.find(b'\n', start, stop)
            part = self._take((newline + 1 if newline >= 0 else stop) - start)
            parts.append(part)
            if newline >= 0:
                break
            if size > 0:
                size -= len(part)
        return parts[0] if len(parts) == 1 else b''.join(parts)

    def readlines(self, hint=-1):
        lines = []
        total = 0
        for line in self:
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def readable(self):
        return True

    def close(self):
        """Servers own wsgi.input; closing it is a no-op (as in waitress and gunicorn)."""

    # --- internals

    def _check_cancelled(self):
        if self._exchange.is_cancelled:
            raise ClientDisconnected()

    def _has_data_or_end(self):
        return self._buffered or self._has_all or self._exchange.is_cancelled

    def _fill(self):
        """Wait until bytes are buffered -> True, or the body has ended -> False."""
        self._check_cancelled()
        if self._buffered:
            return True
        if self._has_all:
            return False
        self._send_credit()
        self._signals.wait_until(self._exchange, self._has_data_or_end)
        self._check_cancelled()
        return self._buffered > 0

    def _take(self, size):
        """Up to ``size`` (-1: any) bytes from the first buffered chunk; credits the front."""
        chunk = self._chunks[0]
        start = self._offset
        available = len(chunk) - start
        if 0 <= size < available:
            part = chunk[start:start + size]
            self._offset = start + size
        else:
            part = chunk if start == 0 else chunk[start:]
            self._chunks.popleft()
            self._offset = 0
        taken = len(part)
        with self._signals.lock:
            self._buffered -= taken
        if not self._has_all and self._credit.add(taken):
            self._send_credit()
        return part

    def _send_credit(self):
        self._credit.flush(not self._has_all)
