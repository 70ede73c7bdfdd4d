"""``wsgi.input``: the request body, fed by BODY frames, crediting the front as it is read.

Flow control (docs/protocol.md, "Flow control"): the front may have at most ``requestWindow``
un-credited body bytes in flight. This stream credits what the application has consumed
(credit.py: in batches of a quarter window, and always before it waits for more). Nothing is
credited once the last BODY frame has arrived.

Or the body comes whole in a file the front holds (a spooled chunked body: BODY_FILE): the
reader opens it through /proc (``open_body_file``) and the stream reads it from there, with no
frames and no credit; the worker's own descriptor is closed when the request is done
(``release``). If it cannot be opened, the front streams it as BODY frames instead.
"""

import os
import stat
from collections import deque

from .credit import ConsumedCredit

#: smallest read from a body file: an application reading a few bytes at a time costs no more syscalls
MIN_FILE_READ = 64 * 1024
#: largest read from a body file in one call (read() of a huge body still goes in pieces)
MAX_FILE_READ = 16 * 1024 * 1024


def open_body_file(pid, fd, length, dev, ino):
    """The front's file ``/proc/<pid>/fd/<fd>`` opened read-only -> our descriptor, or None
    when it cannot be opened (no /proc, not allowed) or is not that file (device and inode)
    with at least ``length`` bytes: then the front streams the body instead."""
    try:
        ours = os.open('/proc/%d/fd/%d' % (pid, fd), os.O_RDONLY | os.O_CLOEXEC)
    except (OSError, ValueError, OverflowError):
        return None
    try:
        info = os.fstat(ours)
        if stat.S_ISREG(info.st_mode) and info.st_dev == dev and info.st_ino == ino and info.st_size >= length:
            return ours
    except OSError:
        pass
    os.close(ours)
    return None


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
        #: the body's file (BODY_FILE), our descriptor of it, and the bytes of it not yet read
        self._file = None
        self._file_left = 0
        #: the request is done: a file arriving now is closed at once
        self._is_released = False

    # --- reader side (the caller holds signals.lock)

    def deliver(self, data, is_last):
        if data:
            self._chunks.append(data)
            self._buffered += len(data)
        if is_last:
            self._has_all = True

    def attach_file(self, fd, length):
        """The body is ``length`` bytes of the open file ``fd``: no BODY frame comes. False (and
        the caller closes ``fd``) when the request is already done."""
        if self._is_released or self._has_all or self._buffered:
            return False
        self._file = fd
        self._file_left = length
        self._has_all = True  # nothing more arrives as frames, and nothing is credited
        return True

    def release(self):
        """The request is done: close the body's file, if any (the caller holds signals.lock)."""
        self._is_released = True
        fd = self._file
        if fd is not None:
            self._file = None
            self._file_left = 0
            os.close(fd)

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
        while size and self._fill(size):
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
        while size and self._fill(size):
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

    def _fill(self, wanted):
        """Wait until bytes are buffered -> True, or the body has ended -> False. ``wanted``:
        the bytes the caller would take (-1: any), the size of a read from the body's file."""
        self._check_cancelled()
        if self._buffered:
            return True
        if self._file_left:
            return self._read_file(wanted)
        if self._has_all:
            return False
        self._send_credit()
        self._signals.wait_until(self._exchange, self._has_data_or_end)
        self._check_cancelled()
        if self._file_left:
            return self._read_file(wanted)
        return self._buffered > 0

    def _read_file(self, wanted):
        """One read from the body's file into the buffer (only the application thread reads it)."""
        size = min(self._file_left, MAX_FILE_READ, max(wanted, MIN_FILE_READ))
        fd = self._file
        data = os.read(fd, size) if fd is not None else b''
        if not data:
            # Shorter than the front said, or closed under us: never a body that looks whole.
            raise OSError('the request body file ended %d bytes early' % self._file_left)
        self._file_left -= len(data)
        self._chunks.append(data)
        with self._signals.lock:
            self._buffered += len(data)
        return True

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
