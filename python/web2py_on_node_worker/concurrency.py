"""How a worker runs requests: ``thread`` (a pool of threads), ``sync`` (one at a time, in the
main thread: sync.py) or ``gevent`` (greenlets; only this module, gevent_locks.py and
interrupt.py's GreenletInterrupts import gevent).

Every executor has the same face, used by __main__:

- ``prepare()`` before the application is imported (gevent monkey-patches there, as
  web2py's handlers/web2py_on_gevent.py does before it imports gluon);
- ``signals()``: how a request waits for the reader (exchange.Signals or PumpSignals);
- ``submit(exchange)``: run a request (called by the reader through the Router);
- ``serve(channel, router, run)``: read and dispatch frames until the worker should exit; returns
  an Outcome. It wraps ``run`` with interrupt.py's guard and points ``router.interrupt`` at it, so
  that CANCEL with FLAG_TIMEOUT stops the request in the thread or greenlet that runs it.
"""

import importlib
import sys
import threading
import traceback

from .channel import ChannelClosed, exit_now  # noqa: F401 - exit_now: imported from here by __main__ and sync
from .exchange import Signals
from .interrupt import GreenletInterrupts, Interrupts
from .protocol import ProtocolError

WORKER_CLASSES = ('thread', 'gevent', 'sync')
#: How long an exiting gevent worker waits for its queued frames to be written.
FLUSH_TIMEOUT_S = 5


class ExecutorUnavailable(Exception):
    """The requested worker class cannot run in this Python (e.g. gevent is not installed)."""


class Outcome:
    """Why serve() returned."""

    DRAINED = 'drained'          # SHUTDOWN, and every request finished: exit 0
    CLOSED = 'closed'            # the front closed the channel: exit at once
    PROTOCOL_ERROR = 'protocol'  # bad bytes or an unexpected frame from the front

    def __init__(self, kind, error=None):
        self.kind = kind
        #: the ProtocolError for PROTOCOL_ERROR
        self.error = error


def outcome_of(closed):
    """The Outcome for a ChannelClosed."""
    if closed.error is not None:
        return Outcome(Outcome.PROTOCOL_ERROR, closed.error)
    return Outcome(Outcome.CLOSED)


def _run_safely(run, exchange):
    """Requests report their own errors; anything escaping is a worker bug: log, carry on."""
    try:
        run(exchange)
    except ChannelClosed:
        raise  # sync mode: the front is gone; serve() ends
    except BaseException:  # noqa: B902 - a dying pool thread would silently lose capacity
        sys.stderr.write('web2py-on-node worker: internal error while serving a request\n')
        traceback.print_exc()


class ThreadExecutor:
    """A pool of up to ``threads`` threads; the main thread waits while a reader thread reads.

    The pool grows on demand: a request thread starts when a request comes in and every started
    one is busy, up to ``threads``, and then stays for later requests. Why not all at start:
    starting 1,000 greenlets took 13 ms, which the first requests after READY waited (a fresh
    worker after a reload or a recycle gets them at once), and a pool sized for the peak costs
    memory in workers that never see it.
    """

    name = 'thread'
    interrupts_class = Interrupts

    def __init__(self, threads):
        self.capacity = max(1, int(threads))
        self.is_multithread = self.capacity > 1
        self._signals = None
        self._queue = None
        self._run = None
        self._outcome = None
        self._finished = None
        #: Request threads started so far (they never exit) and requests submitted, not finished.
        self._started = 0
        self._outstanding = 0
        # Taken by the reader and by request threads; never held across a switch under gevent.
        self._count_lock = threading.Lock()

    def prepare(self):
        """Nothing to patch for real threads."""

    def signals(self):
        self._signals = Signals()
        return self._signals

    def _interruptible(self, channel, router, run):
        """``run`` guarded for CANCEL with FLAG_TIMEOUT (interrupt.py), wired to the router."""
        interrupts = self.interrupts_class(channel, self._signals, router.finish)
        router.interrupt = interrupts.interrupt
        return interrupts.guard(run)

    def submit(self, exchange):
        with self._count_lock:
            self._outstanding += 1
            number = 0
            if self._outstanding > self._started and self._started < self.capacity:
                self._started += 1
                number = self._started
        if number:
            self._spawn(self._work, 'w2n-request-%d' % number)
        self._queue.put(exchange)

    def serve(self, channel, router, run):
        import queue
        self._queue = queue.SimpleQueue()
        self._run = self._interruptible(channel, router, run)
        self._finished = threading.Event()
        router.on_drained = lambda: self._finish(Outcome(Outcome.DRAINED))
        self._spawn(lambda: self._read(channel, router), 'w2n-reader')
        self._finished.wait()
        return self._outcome

    def _spawn(self, target, name):
        thread = threading.Thread(target=target, name=name)
        # Daemon: a request stuck in application code must not keep a stopping worker alive.
        thread.daemon = True
        thread.start()

    def _work(self):
        take = self._queue.get
        run = self._run
        count_lock = self._count_lock
        while True:
            _run_safely(run, take())
            with count_lock:
                self._outstanding -= 1

    def _read(self, channel, router):
        try:
            while True:
                router.dispatch(channel.read_frames())
        except ChannelClosed as closed:
            self._finish(outcome_of(closed))
        except ProtocolError as error:
            self._finish(Outcome(Outcome.PROTOCOL_ERROR, error))
        except OSError:
            self._finish(Outcome(Outcome.CLOSED))  # a PONG could not be sent: the front is gone
        except BaseException as error:  # noqa: B902 - the reader must never die silently
            traceback.print_exc()
            self._finish(Outcome(Outcome.PROTOCOL_ERROR, ProtocolError('W2N_ERR_PROTO_UNEXPECTED', repr(error))))

    def _finish(self, outcome):
        if self._outcome is None:
            self._outcome = outcome
        self._finished.set()


class GeventExecutor(ThreadExecutor):
    """Greenlets: the same design as ThreadExecutor once threading and socket are patched.

    The pool of up to ``threads`` greenlets bounds concurrency like the seed's ``Pool(workers)``; a
    gevent queue feeds it so that the reader greenlet never blocks on a full pool.
    """

    name = 'gevent'
    interrupts_class = GreenletInterrupts

    def __init__(self, threads):
        super().__init__(threads)
        # As gevent.pywsgi does: greenlets are not threads.
        self.is_multithread = False
        try:
            # Only a probe: patching waits for prepare(), which runs just before the app import.
            importlib.import_module('gevent')
        except ImportError as error:
            raise ExecutorUnavailable(
                "worker class 'gevent' needs the gevent package, which %s cannot import (%s); "
                "install it (pip install gevent, or apt install python3-gevent) or use "
                "--worker-class thread" % (sys.executable, error)) from None

    def _spawn(self, target, name):
        """A greenlet (greenlets have no names)."""
        import gevent
        gevent.spawn(target)

    def prepare(self):
        from gevent import monkey
        monkey.patch_all()
        # web2py's session flock would otherwise stop the hub (gevent_locks.py).
        from .gevent_locks import patch_fcntl
        patch_fcntl(self.capacity)

    def serve(self, channel, router, run):
        import gevent
        import gevent.event
        import gevent.queue
        from .diagnostics import add_greenlet_stacks
        add_greenlet_stacks()
        self._queue = gevent.queue.Queue()
        self._run = self._interruptible(channel, router, run)
        self._finished = gevent.event.Event()
        router.on_drained = lambda: self._finish(Outcome(Outcome.DRAINED))
        channel.batch_sends()
        self._spawn(lambda: self._read(channel, router), 'w2n-reader')
        self._finished.wait()
        # A draining worker's last answers may still be queued: out with them before exit.
        channel.flush(FLUSH_TIMEOUT_S)
        return self._outcome


def make_executor(worker_class, threads):
    """The executor for HANDSHAKE's workerClass. Raises ExecutorUnavailable."""
    from .sync import SyncExecutor  # sync.py builds on this module
    executors = {'thread': ThreadExecutor, 'gevent': GeventExecutor, 'sync': SyncExecutor}
    try:
        executor_class = executors[worker_class]
    except KeyError:
        raise ExecutorUnavailable('unknown worker class %r (expected one of %s)'
                                  % (worker_class, ', '.join(WORKER_CLASSES))) from None
    return executor_class(threads)
