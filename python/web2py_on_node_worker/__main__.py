"""The worker process: handshake, load the application, READY, serve until told to stop.

Launch convention: the front runs ``<python> <repo>/python/w2n_worker.py`` (a launcher that
imports this package and calls ``main()``; ``python -m web2py_on_node_worker`` works too) with

- file descriptor 3: this worker's end of a Unix socketpair, the channel of docs/protocol.md;
- stdin: /dev/null; stdout and stderr: pipes the front reads line by line and re-logs (both are
  made line-buffered here, so that a line shows up when it is written).

Life: read HANDSHAKE (protocol.decode_handshake: exactly the keys the front declares) -> pick the
executor (workers/; gevent patches here, before the app is imported) -> load the app -> send
READY (or ERROR id 0 and exit 3) -> serve. Exit status (exits.py):

- 0: SHUTDOWN, after the requests in flight have finished (atexit hooks run; threads the app
  started are not waited for); or, at once, when the front closes the channel (nothing else
  could be delivered anyway);
- 3: the application could not be loaded (ERROR id 0, W2N_ERR_APP_IMPORT, was sent);
- 4: the front broke the protocol, or its HANDSHAKE is not the one this worker knows (a key
  unknown or missing: ERROR id 0 with the W2N_ERR_PROTO_* code was sent);
- 5: the channel's descriptor was closed under the worker (the application closed fd 3): found
  at the next send, since nothing could be delivered any more (channel.py).

SIGINT is ignored: a Ctrl-C in a terminal reaches the whole process group, and the front, not
the terminal, decides when workers stop (it sends SHUTDOWN, or SIGTERM/SIGKILL to a hung one).
SIGUSR2 prints every thread's Python stack to stderr (diagnostics.py): the front sends it before
it kills a hung worker.
"""

import atexit
import gc
import json
import os
import signal
import socket
import sys
import traceback

from .app import AppLoadError, load_app
from .channel import Channel, ChannelClosed, enlarge_send_buffer, read_first_frame
from .diagnostics import install_stack_dump
from .exits import EXIT_APP_IMPORT, EXIT_OK, EXIT_PROTOCOL, exit_now
from .protocol import (
    ERR_APP_IMPORT, ERR_PROTO_UNEXPECTED, HANDSHAKE, PROTOCOL_VERSION, READY, Decoder,
    ProtocolError, decode_handshake, encode_frame,
)
from . import realtime
from .router import Router
from .workers import ExecutorUnavailable, make_executor
from .workers.base import FLUSH_TIMEOUT_S, Outcome
from .wsgi import RequestRunner, base_environ, send_error

CHANNEL_FD = 3


class StartFailed(Exception):
    """The worker cannot start: an ERROR id 0 with ``code``, then exit ``exit_status``."""

    def __init__(self, code, message, trace, exit_status):
        super().__init__(message)
        self.code = code
        self.message = message
        self.trace = trace
        self.exit_status = exit_status


def main():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _line_buffer_output()
    install_stack_dump()
    sock = socket.socket(fileno=CHANNEL_FD)
    decoder = Decoder()
    try:
        handshake = _read_handshake(sock, decoder)
        executor = _make_executor(handshake)
        executor.prepare()
        # Re-made after prepare(): under gevent the socket class is now the cooperative one.
        sock = socket.socket(fileno=sock.detach())
        enlarge_send_buffer(sock, handshake['responseWindow'])
        app = _load_app(handshake['app'])
        _freeze_loaded_heap()
    except ChannelClosed:
        exit_now(EXIT_OK)
    except StartFailed as failure:
        # The front reports the failure (one line, traceback in its log); print it here only
        # when the front cannot be told.
        if not send_error(_RawChannel(sock), 0, failure.code, failure.message, failure.trace):
            if failure.trace:
                sys.stderr.write(failure.trace)
            sys.stderr.write('web2py-on-node worker: %s\n' % failure.message)
        exit_now(failure.exit_status)

    channel = Channel(sock, decoder, executor.sender(sock))
    # The application's publish() (realtime.py) sends on this channel from now on.
    realtime.attach(channel, handshake['realtimeMaxMessage'])
    signals = executor.signals()
    router = Router(channel, signals, executor.submit, handshake['requestWindow'],
                    handshake['responseWindow'])
    runner = RequestRunner(app, channel, signals, base_environ(executor.is_multithread), router.finish,
                           handshake['profilerDir'])
    try:
        channel.send(encode_frame(READY, 0, 0, json.dumps({
            'protocol': PROTOCOL_VERSION, 'pid': os.getpid(), 'python': _python_version(),
            'workerClass': executor.name, 'capacity': executor.capacity,
        }).encode()))
    except OSError:
        exit_now(EXIT_OK)  # the front went away while the application loaded
    outcome = executor.serve(channel, router, runner.run)
    if outcome.kind == Outcome.DRAINED:
        channel.close()
        # A clean stop runs the atexit hooks (log flushes, coverage data), but does not wait
        # for threads the application started and never stops (a timer, a scheduler loop).
        atexit._run_exitfuncs()
        exit_now(EXIT_OK)
    if outcome.kind == Outcome.PROTOCOL_ERROR:
        error = outcome.error
        sys.stderr.write('web2py-on-node worker: %s\n' % error)
        send_error(channel, 0, error.code, error.message)
        channel.flush(FLUSH_TIMEOUT_S)  # gevent queues sends (workers/ggevent.py)
        exit_now(EXIT_PROTOCOL)
    exit_now(EXIT_OK)


def _read_handshake(sock, decoder):
    try:
        (frame_type, _flags, request_id, payload), backlog = read_first_frame(sock, decoder)
    except ChannelClosed as closed:
        if closed.error is None:
            raise
        raise StartFailed(closed.error.code, closed.error.message, '', EXIT_PROTOCOL) from None
    if frame_type != HANDSHAKE or request_id != 0 or backlog:
        # The front sends HANDSHAKE alone and waits for READY.
        raise StartFailed(ERR_PROTO_UNEXPECTED, 'expected HANDSHAKE alone as the first frame', '',
                          EXIT_PROTOCOL)
    try:
        return decode_handshake(payload)
    except ProtocolError as error:
        raise StartFailed(error.code, error.message, '', EXIT_PROTOCOL) from None


def _make_executor(handshake):
    try:
        return make_executor(handshake['workerClass'], handshake['threads'])
    except ExecutorUnavailable as error:
        raise StartFailed(ERR_APP_IMPORT, str(error), '', EXIT_APP_IMPORT) from None


def _freeze_loaded_heap():
    """Leave what the import made out of every later collection (gc.freeze, Python >= 3.7).

    The application's modules live as long as the worker, yet each full collection walks them
    all: web2py calls gc.collect() every 100 requests (gluon/main.py), which took 19-29 ms over
    web2py's import-time heap (33,000 objects), 185-290 µs per request on average; frozen, 2-4 ms.
    Only a cycle that was alive here and dies later is never freed: at most this heap, once
    (workers are new processes after --reload; what web2py imports per request is not frozen).
    A collection first, so the garbage of the import itself is not kept.
    """
    gc.collect()
    gc.freeze()


def _load_app(spec):
    try:
        return load_app(spec)
    except (Exception, SystemExit) as error:  # an application's import may do anything
        # For an AppLoadError the interesting traceback is the one of the error it explains.
        cause = error.__cause__ or error
        trace = ''.join(traceback.format_exception(type(cause), cause, cause.__traceback__))
        if isinstance(error, AppLoadError):
            message = str(error)
        else:
            message = traceback.format_exception_only(type(error), error)[-1].strip()
        raise StartFailed(ERR_APP_IMPORT, message, trace, EXIT_APP_IMPORT) from None


class _RawChannel:
    """send() on a bare socket, for the ERROR sent before a Channel exists."""

    def __init__(self, sock):
        self._sock = sock

    def send(self, frame):
        self._sock.sendall(frame)


def _python_version():
    return '%d.%d.%d' % sys.version_info[:3]


def _line_buffer_output():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True)
        except (AttributeError, ValueError):
            pass


if __name__ == '__main__':
    main()
