"""Frames sent during one turn of the gevent hub leave in one system call (worker class gevent only).

Why: requests that wait on I/O tend to finish together. When their timers or sockets become
ready in the same turn of the hub, each greenlet finishes its response in turn, and each used to
write its frame with its own ``send``: one system call and one wake-up of the front per response
(about 15 us each on a two-core machine, a third of a sleeping request's whole cost in the
worker). Here ``send`` only appends to a list; one sender greenlet, woken at the next turn,
writes everything queued meanwhile with one ``sendmsg``, and the front reads it in one go.

Order: frames are written in the order ``send`` was called, so the frames of one request stay in
order. Back-pressure: a greenlet whose ``send`` finds more than ``MAX_QUEUED_BYTES`` queued waits
until the sender has written them, as a blocking ``sendall`` waited on a full socket before.
A failed write (the front is gone) closes the queue: every later ``send`` raises OSError, as the
socket would have.
"""

import errno

import gevent
import gevent.event

from .channel import sendmsg_all

#: Queued bytes past which a sending greenlet waits for the sender (back-pressure).
MAX_QUEUED_BYTES = 1024 * 1024
#: Pieces per sendmsg (Linux's IOV_MAX is 1024).
MAX_PIECES = 512


class BatchedSender:
    """Replaces a Channel's ``send`` and ``send_parts`` (see Channel.batch_sends)."""

    def __init__(self, sock):
        self._sock = sock
        self._pieces = []
        self._queued_bytes = 0
        self._error = None
        self._has_work = gevent.event.Event()
        self._drained = gevent.event.Event()
        self._drained.set()
        # Set when nothing is queued and nothing is being written (flush waits for it).
        self._idle = gevent.event.Event()
        self._idle.set()
        self._greenlet = gevent.spawn(self._run)

    def send(self, frame):
        """Queue one encoded frame (or several joined)."""
        self._queue((frame,), len(frame))

    def send_parts(self, parts):
        """Queue header and payload pieces of one frame, without joining them."""
        self._queue(parts, sum(map(len, parts)))

    def _queue(self, parts, size):
        self._raise_if_closed()
        if self._queued_bytes >= MAX_QUEUED_BYTES:
            self._drained.wait()
            self._raise_if_closed()
        self._pieces.extend(parts)
        self._queued_bytes += size
        self._idle.clear()
        if self._queued_bytes >= MAX_QUEUED_BYTES:
            self._drained.clear()
        self._has_work.set()

    def _raise_if_closed(self):
        if self._error is not None:
            raise OSError(self._error.errno or errno.EPIPE, 'the channel is closed: %s' % self._error)

    def _run(self):
        while True:
            self._has_work.wait()
            self._has_work.clear()
            pieces = self._pieces
            self._pieces = []
            self._queued_bytes = 0
            try:
                self._write(pieces)
            except OSError as error:
                self._error = error
                self._drained.set()  # wake the waiters: they raise
                self._idle.set()
                return
            if self._queued_bytes < MAX_QUEUED_BYTES:
                self._drained.set()
            if not self._pieces:
                self._idle.set()

    def flush(self, timeout=None):
        """Wait until everything queued has been written (or the channel failed). Before exit."""
        self._idle.wait(timeout)

    def _write(self, pieces):
        for start in range(0, len(pieces), MAX_PIECES):
            sendmsg_all(self._sock, pieces[start:start + MAX_PIECES])
