"""Worker class ``gevent``: greenlets, with threading and socket monkey-patched.

The only module of the worker that imports gevent (a test keeps it so): the thread and sync
classes never load it, and make_executor() imports this module only for ``gevent``. Named as
gunicorn's ``workers/ggevent.py``, so that it never stands in for the gevent package itself.

Everything the gevent class does differently from the thread class is here:

- GeventExecutor: ThreadExecutor's design (thread.py) on greenlets; patches in prepare();
- GreenletSignals: a request waits for the reader on a gevent Event, not a Condition;
- BatchedSender: frames sent in one turn of the hub leave in one system call;
- patch_fcntl: ``fcntl.flock``/``lockf`` that wait off the hub (web2py's session locks);
- GreenletInterrupts: CANCEL throws into the request's greenlet from the hub (interrupt.py);
- add_greenlet_stacks: SIGUSR2 also prints every greenlet's stack (diagnostics.py).
"""

import errno
import faulthandler
import fcntl
import os
import signal
import sys
import time

import gevent
import gevent.event

from ..channel import sendmsg_all
from ..exchange import Signals
from ..interrupt import DEFER_S, REPEAT_S, Interrupts, is_protected, protect
from .base import FLUSH_TIMEOUT_S, Outcome
from .thread import ThreadExecutor


class GeventExecutor(ThreadExecutor):
    """Greenlets: the same design as ThreadExecutor once threading and socket are patched.

    The pool of up to ``threads`` greenlets bounds concurrency like the seed's ``Pool(workers)``; a
    gevent queue feeds it so that the reader greenlet never blocks on a full pool.
    """

    name = 'gevent'

    def __init__(self, threads):
        super().__init__(threads)
        # As gevent.pywsgi does: greenlets are not threads.
        self.is_multithread = False
        self.interrupts_class = GreenletInterrupts

    def _spawn(self, target, name):
        """A greenlet (greenlets have no names)."""
        gevent.spawn(target)

    def prepare(self):
        from gevent import monkey
        monkey.patch_all()
        # web2py's session flock would otherwise stop the hub (patch_fcntl, below).
        patch_fcntl(self.capacity)

    def sender(self, sock):
        """Frames sent in one turn of the hub leave together (BatchedSender)."""
        return BatchedSender(sock)

    def signals(self):
        """A gevent Event per waiting exchange instead of a Condition (GreenletSignals)."""
        self._signals = GreenletSignals()
        return self._signals

    def serve(self, channel, router, run):
        import gevent.queue
        add_greenlet_stacks()
        self._queue = gevent.queue.Queue()
        self._run = self._interruptible(channel, router, run)
        self._finished = gevent.event.Event()
        router.on_drained = lambda: self._finish(Outcome(Outcome.DRAINED))
        self._spawn(lambda: self._read(channel, router), 'w2n-reader')
        self._finished.wait()
        # A draining worker's last answers may still be queued: out with them before exit.
        channel.flush(FLUSH_TIMEOUT_S)
        return self._outcome


Executor = GeventExecutor


# --- waiting for the reader

class GreenletSignals(Signals):
    """Signals for greenlets: a waiting exchange gets a gevent Event, which the reader sets.

    Why: the reader hands over every BODY frame and CREDIT this way, and a monkey-patched
    ``threading.Condition`` is pure Python that allocates a lock per wait: 4 x 128 MiB uploads
    cost the workers about a fifth less CPU with this (README, "Bulk bodies"). Greenlets switch
    only when they block, so nothing can change between the check of ``is_ready`` and the wait:
    the Event is cleared before the check, and a set() from the reader after it wakes the wait.
    ``lock`` stays (the reader and the interrupts still take it around their changes).
    """

    def wait_until(self, exchange, is_ready, timeout=None):
        event = exchange.condition
        if event is None:
            event = exchange.condition = gevent.event.Event()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            event.clear()
            if is_ready():
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            event.wait(left)

    def notify(self, exchange):
        event = exchange.condition
        if event is not None:
            event.set()


# --- batched sends

#: Queued bytes past which a sending greenlet waits for the sender (back-pressure).
MAX_QUEUED_BYTES = 1024 * 1024
#: Pieces per sendmsg (Linux's IOV_MAX is 1024).
MAX_PIECES = 512


class BatchedSender:
    """The gevent class's Channel sender: frames sent in one turn of the hub leave in one system call.

    Why: requests that wait on I/O tend to finish together. When their timers or sockets become
    ready in the same turn of the hub, each greenlet finishes its response in turn; each writing
    its own frame would cost one system call and one wake-up of the front per response, a large
    share of what a sleeping request costs the worker. Here ``send`` only appends to a list; one
    sender greenlet, woken at the next turn, writes everything queued meanwhile with one
    ``sendmsg``, and the front reads it in one go.

    Order: frames are written in the order ``send`` was called, so the frames of one request stay
    in order. Back-pressure: a greenlet whose ``send`` finds more than ``MAX_QUEUED_BYTES`` queued
    waits until the sender has written them, as a blocking ``sendall`` waited on a full socket.
    A failed write (the front is gone) closes the queue: every later ``send`` raises OSError, as
    the socket would have. ``flush`` before the worker exits, so that nothing queued is lost.
    """

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


# An interrupt must not land halfway through queueing a frame's pieces.
protect(BatchedSender.send, BatchedSender.send_parts)


# --- fcntl locks off the hub

#: errno of a LOCK_NB call that would block (flock says EWOULDBLOCK, lockf EACCES or EAGAIN)
_WOULD_BLOCK = frozenset((errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES))


def patch_fcntl(max_waiters):
    """Replace fcntl.flock and fcntl.lockf. Call after monkey.patch_all(), before the app import.

    web2py holds an exclusive flock on a request's session file for the whole request
    (portalocker calls ``fcntl.flock(file.fileno(), LOCK_EX)``). A blocking flock is one plain
    system call: under gevent it stops every greenlet of the process, including the one that
    holds the lock and would release it after its next switch, so two requests with the same
    session cookie hang the worker (gevent issue 1657). The wrappers installed here try the
    non-blocking call first (uncontended, that is the only system call), and only if it would
    block, wait in a thread, so other greenlets keep running. The threads come from a pool of
    their own: waiters parked in gevent's hub pool would starve what else runs there (gevent's
    default DNS resolver).

    ``max_waiters`` bounds the waiting threads (the executor's capacity: one per request at most).
    """
    original_flock = fcntl.flock
    original_lockf = fcntl.lockf
    pools = []

    def wait_in_thread(function, *args):
        if not pools:
            from gevent.threadpool import ThreadPool
            pools.append(ThreadPool(max(1, max_waiters)))
        return pools[0].apply(function, args)

    def flock_then_close(duplicate, operation):
        try:
            return original_flock(duplicate, operation)
        finally:
            os.close(duplicate)

    def flock(fd, operation):
        if operation & (fcntl.LOCK_NB | fcntl.LOCK_UN):
            return original_flock(fd, operation)
        try:
            return original_flock(fd, operation | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in _WOULD_BLOCK:
                raise
        # A flock belongs to the open file description. The thread locks through a duplicate
        # descriptor it closes itself: the lock stays held by the request's own descriptor, and
        # if the request is interrupted (RequestTimeout) and closes its file meanwhile, the late
        # lock dies with the duplicate instead of landing on whatever reuses the number.
        return wait_in_thread(flock_then_close, os.dup(_fileno(fd)), operation)

    def lockf(fd, cmd, length=0, start=0, whence=0):
        if cmd & fcntl.LOCK_NB or cmd == fcntl.LOCK_UN:
            return original_lockf(fd, cmd, length, start, whence)
        try:
            return original_lockf(fd, cmd | fcntl.LOCK_NB, length, start, whence)
        except OSError as error:
            if error.errno not in _WOULD_BLOCK:
                raise
        # POSIX locks belong to the process and closing any descriptor of the file drops them,
        # so no duplicate here; they only ever wait for another process.
        return wait_in_thread(original_lockf, fd, cmd, length, start, whence)

    flock.__doc__ = original_flock.__doc__
    lockf.__doc__ = original_lockf.__doc__
    fcntl.flock = flock
    fcntl.lockf = lockf


def _fileno(fd):
    return fd if isinstance(fd, int) else fd.fileno()


# --- interrupts

class GreenletInterrupts(Interrupts):
    """CANCEL: throw into the greenlet from the hub, where it is suspended at a switch point.

    At once even in ``time.sleep`` (patched). A greenlet spinning in pure Python never yields, so
    the hub never reads the CANCEL: only the front's ``--timeout-grace`` kill (after a SIGUSR2
    stack dump) ends that one.
    """

    def __init__(self, channel, signals, finish):
        super().__init__(channel, signals, finish)
        self._current = gevent.getcurrent
        self._loop = gevent.get_hub().loop

    def _after_interrupt(self):
        """A throw is synchronous: nothing can be pending."""

    def _deliver(self, exchange, greenlet):
        self._loop.run_callback(self._throw, exchange, greenlet)

    def _later(self, delay, exchange, greenlet):
        timer = self._loop.timer(delay)

        def fire():
            timer.close()
            self._throw(exchange, greenlet)
        timer.start(fire)

    def _throw(self, exchange, greenlet):
        # Runs in the hub: the target is suspended, so nothing changes between check and throw.
        if exchange.runner is not greenlet or greenlet.dead:
            return
        if is_protected(greenlet.gr_frame):
            self._later(DEFER_S, exchange, greenlet)
            return
        self._later(REPEAT_S, exchange, greenlet)
        greenlet.throw(exchange.stop_with)


# --- stacks on SIGUSR2

def add_greenlet_stacks():
    """After the threads' stacks (diagnostics.py), also print every greenlet's stack.

    faulthandler stays first (it runs in C, at once); chained after it, a Python handler prints
    gevent's run info when the main thread next runs Python code (a greenlet spinning in Python
    does, one blocked in C does not). Call from the main thread, after monkey.patch_all().
    """
    faulthandler.unregister(signal.SIGUSR2)
    signal.signal(signal.SIGUSR2, _print_greenlets)
    faulthandler.register(signal.SIGUSR2, file=sys.stderr, all_threads=True, chain=True)


def _print_greenlets(_signum, _frame):
    try:
        from gevent.util import print_run_info
        print_run_info(thread_stacks=False, file=sys.stderr)
    except Exception as error:  # noqa: BLE001 - a diagnostic must not break the request it lands in
        sys.stderr.write('web2py-on-node worker: cannot list greenlets: %r\n' % (error,))
