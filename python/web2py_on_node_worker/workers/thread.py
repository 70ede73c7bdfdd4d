"""Worker class ``thread``: a pool of threads runs the requests; a reader thread reads the channel.

The gevent class (ggevent.py) is this same design once threading and socket are monkey-patched:
it subclasses ThreadExecutor and changes how tasks are spawned, queued and interrupted.
"""

import threading
import traceback

from ..channel import ChannelClosed
from ..exchange import Signals
from ..interrupt import Interrupts
from ..protocol import ERR_PROTO_UNEXPECTED, ProtocolError
from .base import Outcome, outcome_of, run_safely


class ThreadExecutor:
    """A pool of up to ``threads`` threads; the main thread waits while a reader thread reads.

    The pool grows on demand: a request thread starts when a request comes in and every started
    one is busy, up to ``threads``, and then stays for later requests. Why not all at start: the
    first requests after READY would wait for the whole pool to start (a fresh worker after a
    reload or a recycle gets them at once, and a pool of a thousand greenlets or threads is not
    free), and a pool sized for the peak costs memory in workers that never see it.
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

    def sender(self, sock):
        """Frames are written at once, by the thread that sends them (channel.DirectSender)."""
        return None

    def signals(self):
        self._signals = Signals()
        return self._signals

    def _interruptible(self, channel, router, run):
        """``run`` guarded for CANCEL (interrupt.py), wired to the router."""
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
            run_safely(run, take())
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
            self._finish(Outcome(Outcome.PROTOCOL_ERROR, ProtocolError(ERR_PROTO_UNEXPECTED, repr(error))))

    def _finish(self, outcome):
        if self._outcome is None:
            self._outcome = outcome
        self._finished.set()


Executor = ThreadExecutor
