"""The socket to the front: reading frames, and writing them one whole frame at a time.

Any thread may send; a lock keeps frames whole on the wire. Only one thread (the reader) reads.
Nothing here knows about WSGI or requests.
"""

import errno
import os
import socket
import sys
import threading

from .protocol import Decoder, ProtocolError

#: recv_into() buffer: a whole MAX_CHUNK body frame (and many small frames) per system call.
RECV_BYTES = 512 * 1024


class ChannelClosed(BaseException):
    """The channel is gone (EOF from the front, or bad bytes from it).

    A BaseException, so that application code (``except Exception``) cannot swallow it when it
    surfaces inside a ``wsgi.input.read()`` in sync mode. ``error`` is the ProtocolError, if any.
    """

    def __init__(self, error=None):
        super().__init__(str(error) if error else 'the front closed the channel')
        self.error = error


#: exit status of a worker whose channel descriptor was closed under it (by the application)
EXIT_CHANNEL_LOST = 5
#: what a write on a descriptor that is no longer the channel's socket fails with
_LOST_ERRNOS = frozenset((errno.EBADF, errno.ENOTSOCK))


def exit_now(status):
    """Exit without waiting for request threads or atexit hooks (the channel is gone)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)


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


class Channel:
    """One stream socket to the front, with its frame decoder."""

    def __init__(self, sock, decoder=None):
        self._sock = sock
        self._decoder = decoder if decoder is not None else Decoder()
        self._send_lock = threading.Lock()
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
        """Send one encoded frame (or several joined), whole."""
        with self._send_lock:
            try:
                self._sock.sendall(frame)
            except OSError as error:
                _exit_if_lost(error)
                raise

    def send_parts(self, parts):
        """Send header and payload pieces as one frame without joining them (large bodies)."""
        with self._send_lock:
            sendmsg_all(self._sock, parts)

    def batch_sends(self):
        """gevent only: from now on, frames sent in one turn of the hub leave in one system call.

        ``send`` and ``send_parts`` then queue for a sender greenlet (gevent_sender.py); call
        ``flush`` before the worker exits so that nothing queued is lost.
        """
        from .gevent_sender import BatchedSender
        sender = BatchedSender(self._sock)
        self.send = sender.send
        self.send_parts = sender.send_parts
        self.flush = sender.flush

    def flush(self, timeout=None):
        """Sends are written at once unless batched: nothing to wait for."""

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
