"""The socket to the front: reading frames, and writing them one whole frame at a time.

Only one thread (the reader) reads. Any thread may send, through the channel's sender: by default
a DirectSender, which writes each frame at once under a lock that keeps frames whole on the wire;
the thread class passes a HoldingSender, which holds one thread's frames back to write them
together (workers/thread.py), and the gevent class its own, which batches (workers/ggevent.py).
Nothing here knows about WSGI, requests or worker classes.
"""

import errno
import socket
import sys
import threading
from threading import get_ident

from .exits import EXIT_CHANNEL_LOST, exit_now
from .protocol import Decoder, ProtocolError

#: recv_into() buffer: a whole MAX_CHUNK body frame (and many small frames) per system call.
RECV_BYTES = 512 * 1024


#: Largest send buffer asked for (the kernel doubles it for its bookkeeping, and caps it at
#: net.core.wmem_max, 4 MiB by default on Linux).
MAX_SEND_BUFFER = 1024 * 1024


def enlarge_send_buffer(sock, response_window):
    """Let the socket hold a whole response window (at most MAX_SEND_BUFFER) before a send blocks.

    Why: a Unix socket's default send buffer (net.core.wmem_default, 208 KiB) holds about three
    64 KiB body frames, so a worker streaming a body blocked every few frames and waited for the
    front to read (a wake-up each way per frame); 4 x 128 MiB app-made downloads cost the workers
    about 2.5 times the CPU (README, "Downloads, the worker's send buffer"). The buffer is the
    kernel's memory, bounded by this size, not the worker's. Best effort: a kernel that refuses
    keeps its default, which only costs speed.
    """
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, min(response_window, MAX_SEND_BUFFER))
    except OSError:
        pass


class ChannelClosed(BaseException):
    """The channel is gone (EOF from the front, or bad bytes from it).

    A BaseException, so that application code (``except Exception``) cannot swallow it when it
    surfaces inside a ``wsgi.input.read()`` in sync mode. ``error`` is the ProtocolError, if any.
    """

    def __init__(self, error=None):
        super().__init__(str(error) if error else 'the front closed the channel')
        self.error = error


#: what a write on a descriptor that is no longer the channel's socket fails with
_LOST_ERRNOS = frozenset((errno.EBADF, errno.ENOTSOCK))


def _exit_if_lost(error):
    """A send failed: if the channel's descriptor itself is gone, the worker cannot go on.

    An application that closes fd 3 (``os.closerange(3, ...)`` before a fork, a daemon library)
    leaves the reader blocked in recv for ever and every answer undeliverable; a later open()
    may even reuse the number. Exiting at once is the only way out: the front sees the exit,
    answers 502 for the requests in flight and starts a fresh worker.
    """
    if error.errno in _LOST_ERRNOS:
        sys.stderr.write('web2py-on-node worker: the channel (fd 3) was closed under the worker'
                         ' (by the application?): exiting\n')
        exit_now(EXIT_CHANNEL_LOST)


def sendmsg_all(sock, parts):
    """Send ``parts`` (at most IOV_MAX of them) with one sendmsg, and whatever it left with sendall."""
    try:
        sent = sock.sendmsg(parts)
        if sent < sum(map(len, parts)):
            # A blocking stream socket takes it all unless a signal cut in, or (gevent) a full
            # buffer: rare, so copy the rest.
            sock.sendall(memoryview(b''.join(parts))[sent:])
    except OSError as error:
        _exit_if_lost(error)
        raise


class DirectSender:
    """Writes each frame at once, under a lock that keeps frames whole on the wire."""

    def __init__(self, sock):
        self._sock = sock
        self._lock = threading.Lock()

    def send(self, frame):
        """Send one encoded frame (or several joined), whole."""
        with self._lock:
            try:
                self._sock.sendall(frame)
            except OSError as error:
                _exit_if_lost(error)
                raise

    def send_parts(self, parts):
        """Send header and payload pieces as one frame without joining them (large bodies)."""
        with self._lock:
            sendmsg_all(self._sock, parts)

    def flush(self, timeout=None):
        """Nothing is ever queued: every frame is written when send returns."""


#: HoldingSender writes what it holds once it holds this many bytes, or this many pieces (a
#: sendmsg takes at most IOV_MAX, 1024 on Linux)
MAX_HELD_BYTES = 64 * 1024
MAX_HELD_PIECES = 512


class HoldingSender(DirectSender):
    """A DirectSender that holds back the frames of one thread (the holder) until ``release``.

    Frames are whole and in order per thread either way: the holder's frames leave in the order
    it sent them, before anything it sends after ``release``; frames of other threads go out at
    once, maybe before the holder's held ones (the front needs order only within a request, and
    a request's frames come from the thread that runs it).
    """

    def __init__(self, sock):
        super().__init__(sock)
        self._holder = None
        self._held = []
        self._held_bytes = 0

    def hold(self, ident):
        """From now on, hold what thread ``ident`` sends (the thread itself calls this)."""
        with self._lock:
            self._holder = ident

    def release(self, ident=None):
        """Write everything held; stop holding for ``ident`` (None: whoever holds)."""
        with self._lock:
            if ident is None or self._holder == ident:
                self._holder = None
            if self._held:
                self._write_held()

    def send(self, frame):
        with self._lock:
            if self._holder != get_ident():
                self._write(frame)
                return
            self._held.append(frame)
            self._held_bytes += len(frame)
            if self._held_bytes >= MAX_HELD_BYTES or len(self._held) >= MAX_HELD_PIECES:
                self._write_held()

    def send_parts(self, parts):
        with self._lock:
            if self._holder != get_ident():
                sendmsg_all(self._sock, parts)
                return
            self._held.extend(parts)
            self._held_bytes += sum(map(len, parts))
            if self._held_bytes >= MAX_HELD_BYTES or len(self._held) >= MAX_HELD_PIECES:
                self._write_held()

    def flush(self, timeout=None):
        """Write everything held (before the worker exits)."""
        self.release()

    def _write(self, frame):
        try:
            self._sock.sendall(frame)
        except OSError as error:
            _exit_if_lost(error)
            raise

    def _write_held(self):
        held = self._held
        self._held = []
        self._held_bytes = 0
        for start in range(0, len(held), MAX_HELD_PIECES):
            sendmsg_all(self._sock, held[start:start + MAX_HELD_PIECES])


class Channel:
    """One stream socket to the front, with its frame decoder and its sender.

    ``sender`` has ``send(frame)``, ``send_parts(parts)`` and ``flush(timeout)``; a DirectSender
    on ``sock`` when None.
    """

    def __init__(self, sock, decoder=None, sender=None):
        self._sock = sock
        self._decoder = decoder if decoder is not None else Decoder()
        self._sender = sender if sender is not None else DirectSender(sock)
        self._buffer = bytearray(RECV_BYTES)
        self._view = memoryview(self._buffer)

    def read_frames(self):
        """Block until bytes arrive and return the frames they complete (maybe none).

        Raises ChannelClosed on EOF, on a socket error, or on bad bytes (``.error`` set).
        """
        try:
            received = self._sock.recv_into(self._view)
        except OSError:
            raise ChannelClosed() from None
        if not received:
            raise ChannelClosed()
        try:
            # The decoder copies what it keeps, so the buffer can be reused by the next recv.
            return self._decoder.feed(self._view[:received])
        except ProtocolError as error:
            raise ChannelClosed(error) from None

    def send(self, frame):
        """Send one encoded frame (or several joined), whole. Raises OSError if the front is gone."""
        self._sender.send(frame)

    def send_parts(self, parts):
        """Send header and payload pieces as one frame without joining them (large bodies)."""
        self._sender.send_parts(parts)

    def flush(self, timeout=None):
        """Wait until every frame sent so far is written (a batching sender queues them)."""
        self._sender.flush(timeout)

    def fileno(self):
        return self._sock.fileno()

    def close(self):
        """Shut both directions (this also wakes a reader blocked in recv) and close."""
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()


def read_first_frame(sock, decoder):
    """Read frames until the first one (the HANDSHAKE) is whole -> (frame, frames after it).

    Used before the executor exists (gevent must patch the socket module first), with a plain
    blocking socket. Raises ChannelClosed like Channel.read_frames.
    """
    while True:
        try:
            data = sock.recv(RECV_BYTES)
        except OSError:
            raise ChannelClosed() from None
        if not data:
            raise ChannelClosed()
        try:
            frames = decoder.feed(data)
        except ProtocolError as error:
            raise ChannelClosed(error) from None
        if frames:
            return frames[0], frames[1:]
