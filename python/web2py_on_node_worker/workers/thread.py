"""Worker class ``thread``: threads run the requests; the one reading the channel runs what it read.

Two designs live here:

- ThreadExecutor: a reader thread (or greenlet) reads the channel and hands every request to a
  pool. The gevent class (ggevent.py) is this design once threading and socket are
  monkey-patched: it subclasses ThreadExecutor and changes how tasks are spawned, queued and
  interrupted. Handing over costs a greenlet switch there, but a thread wake-up and two GIL
  hand-offs with real threads.
- InlineThreadExecutor, what the thread class runs: the thread that reads the channel runs the
  requests it read itself, one after the other, as the sync class does; when one of them takes a
  while (or waits for the front), another thread takes over reading, and the requests still
  waiting go to other threads. See its docstring for why and for the figures.
"""

import threading
import time
import traceback
from collections import deque

from ..channel import ChannelClosed, HoldingSender
from ..exchange import Signals
from ..interrupt import Interrupts, protect
from ..protocol import ERR_PROTO_UNEXPECTED, ProtocolError
from .base import Outcome, outcome_of, run_safely


class ThreadExecutor:
    """A pool of up to ``threads`` threads; the main thread waits while a reader thread reads.

    The base of the gevent class (greenlets); the thread class runs InlineThreadExecutor, below.

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


#: how often the watcher looks at the reader; a request it has found running inline at two looks
#: in a row (so for 1 to 2 ticks) counts as slow, and another thread takes over reading
TAKEOVER_TICK_S = 0.001
#: ticks with no request running inline after which the watcher sleeps until the next one starts
WATCHER_IDLE_TICKS = 50


class _Seat:
    """One thread of InlineThreadExecutor and what it was given to do while it was parked."""

    __slots__ = ('number', 'ident', 'wake', 'exchange')

    def __init__(self, number):
        self.number = number
        self.ident = None
        #: held while the thread is parked: released to wake it
        self.wake = threading.Lock()
        self.wake.acquire()
        #: a request handed to it with the wake-up (already counted in _running)
        self.exchange = None


class ReaderSignals(Signals):
    """Signals for InlineThreadExecutor: a request about to wait for the front first makes sure
    that another thread reads the channel, if its own thread was the reader."""

    def __init__(self, executor):
        super().__init__()
        self._executor = executor

    def wait_until(self, exchange, is_ready, timeout=None):
        with self.lock:
            if is_ready():
                return True
        self._executor.stop_reading_inline()
        return super().wait_until(exchange, is_ready, timeout)


class InlineThreadExecutor(ThreadExecutor):
    """The thread class: the reading thread runs the requests it read, until one is slow.

    Why: handing each request from a reader thread to a pool thread (ThreadExecutor) costs a
    thread wake-up and GIL hand-offs per request: 2.6 context switches and 3.5 futex calls per
    hello-world request, 43 µs of worker CPU where the sync class (the same work in one thread)
    spends 16 (bench/worker-micro.py, 4 requests in flight). Here the thread holding the reader
    role reads a batch of frames, dispatches it, then runs the requests that came in it itself,
    one after the other, and reads again: a hello-world request costs what it costs the sync
    class.

    What keeps a slow request from holding the others (``threads`` is still how many run at
    once): a watcher thread looks every TAKEOVER_TICK_S; a request it finds running inline at two
    looks in a row is slow, and the reader role goes to another thread (an idle one, or a new
    one), which reads on, while the requests of the batch that had not started go to idle
    threads. So a request waits at most about two ticks (plus a GIL switch interval if the slow
    one holds the GIL) behind a slow neighbour. A request about to wait for the front (body,
    credit, FILE_OPENED, WebSocket messages: ReaderSignals) hands the reader role over at once,
    since only a reader delivers what it waits for. The thread that gave the role away finishes
    its request, then serves from the queue or parks. The watcher parks too while no request
    runs inline, so an idle worker does not tick.

    Threads: up to ``threads`` + 1 (at most ``threads`` in requests, one reading), started on
    demand, named ``w2n-request-N``; any of them may read. Every change of role happens under
    Signals.lock.
    """

    def __init__(self, threads):
        super().__init__(threads)
        self._lock = None
        self._channel = None
        self._router = None
        #: requests dispatched and not started, oldest first
        self._waiting = deque()
        #: requests started (inline or not) and not finished; never more than capacity
        self._running = 0
        #: threads started so far (they never exit)
        self._seats = 0
        #: parked threads, the last parked on top (its stack is the warmest)
        self._idle = []
        #: the seat that reads the channel
        self._reader = None
        #: the reader's seat while it runs a request itself, else None
        self._inline = None
        #: requests started inline so far: the watcher sees progress by it
        self._inline_count = 0
        self._watcher_parked = False
        #: held while the watcher is parked
        self._watcher_wake = threading.Lock()
        self._watcher_wake.acquire()
        self._sender = None

    def sender(self, sock):
        """A HoldingSender: the answers of the requests run inline leave together."""
        self._sender = HoldingSender(sock)
        return self._sender

    def signals(self):
        self._signals = ReaderSignals(self)
        return self._signals

    def submit(self, exchange):
        # Only the reader submits (Router.dispatch): it runs them once the batch is dispatched.
        self._waiting.append(exchange)

    def serve(self, channel, router, run):
        self._lock = self._signals.lock
        self._channel = channel
        self._router = router
        self._run = self._interruptible(channel, router, run)
        self._finished = threading.Event()
        router.on_drained = lambda: self._finish(Outcome(Outcome.DRAINED))
        with self._lock:
            seat = self._reader = self._new_seat()
        self._start(seat)
        watcher = threading.Thread(target=self._watch, name='w2n-watcher')
        watcher.daemon = True
        watcher.start()
        self._finished.wait()
        # The last answers of a draining worker may still be held: out with them before exit.
        try:
            self._sender.flush()
        except OSError:
            pass
        return self._outcome

    # --- threads

    def _new_seat(self):
        """A seat for a thread still to start (the caller holds the lock, then calls _start)."""
        self._seats += 1
        return _Seat(self._seats)

    def _start(self, seat):
        self._spawn(lambda: self._work(seat), 'w2n-request-%d' % seat.number)

    def _work(self, seat):
        seat.ident = threading.get_ident()
        lock = self._lock
        waiting = self._waiting
        run = self._run
        capacity = self.capacity
        finished = False
        while True:
            is_reader = False
            with lock:
                if finished:
                    self._running -= 1
                    finished = False
                exchange = seat.exchange
                if exchange is not None:
                    seat.exchange = None
                elif self._reader is seat:
                    is_reader = True
                elif waiting and self._running < capacity:
                    exchange = waiting.popleft()
                    self._running += 1
                else:
                    self._idle.append(seat)
            if exchange is not None:
                run_safely(run, exchange)
                finished = True
            elif is_reader:
                if not self._lead(seat):
                    return
            else:
                seat.wake.acquire()

    def _lead(self, seat):
        """Read, dispatch, run what came; until another thread took the role (True) or the
        channel is done (False)."""
        channel = self._channel
        router = self._router
        lock = self._lock
        waiting = self._waiting
        run = self._run
        capacity = self.capacity
        sender = self._sender
        ident = seat.ident
        while True:
            try:
                # What the requests of the last batch answered leaves in one sendmsg.
                sender.release(ident)
                router.dispatch(channel.read_frames())
            except ChannelClosed as closed:
                self._finish(outcome_of(closed))
                return False
            except ProtocolError as error:
                self._finish(Outcome(Outcome.PROTOCOL_ERROR, error))
                return False
            except OSError:
                self._finish(Outcome(Outcome.CLOSED))  # a PONG could not be sent: the front is gone
                return False
            except BaseException as error:  # noqa: B902 - the reader must never die silently
                traceback.print_exc()
                self._finish(Outcome(Outcome.PROTOCOL_ERROR, ProtocolError(ERR_PROTO_UNEXPECTED, repr(error))))
                return False
            finished = False
            while True:
                with lock:
                    if finished:
                        self._running -= 1
                        if self._inline is seat:
                            self._inline = None
                    if self._reader is not seat:
                        return True  # a request of this batch was slow: another thread reads
                    if not waiting or self._running >= capacity:
                        break
                    exchange = waiting.popleft()
                    self._running += 1
                    self._inline = seat
                    self._inline_count += 1
                    sender.hold(ident)
                    if self._watcher_parked:
                        self._watcher_parked = False
                        self._watcher_wake.release()
                try:
                    run_safely(run, exchange)
                except ChannelClosed as closed:  # not raised by thread requests; never lose the reader
                    self._finish(outcome_of(closed))
                    return False
                finished = True

    def _hand_over(self):
        """The reader's request is slow: another thread reads, idle ones take the waiting requests.

        The caller holds the lock; once it has let go of it, it starts the seats returned and
        releases what the sender holds for the old reader (_after_hand_over).
        """
        self._inline = None
        seat, starting = self._wake_seat()
        self._reader = seat
        return starting + self._give_waiting()

    def _give_waiting(self):
        """Waiting requests to other threads, as far as capacity goes. The caller holds the lock
        and starts the seats returned once it has let go of it."""
        starting = []
        waiting = self._waiting
        for _ in range(min(len(waiting), self.capacity - self._running)):
            seat, new = self._wake_seat()
            starting += new
            seat.exchange = waiting.popleft()
            self._running += 1
        return starting

    def _wake_seat(self):
        """An idle seat, woken (its role is set before the caller lets go of the lock), or a new
        one -> (seat, [seat] if it is to start)."""
        if self._idle:
            seat = self._idle.pop()
            seat.wake.release()
            return seat, []
        seat = self._new_seat()
        return seat, [seat]

    def stop_reading_inline(self):
        """A request is about to wait for the front: if its thread is the reader, another reads."""
        with self._lock:
            seat = self._inline
            if seat is None or seat.ident != threading.get_ident():
                return
            starting = self._hand_over()
        self._after_hand_over(seat, starting)

    def _after_hand_over(self, old, starting):
        for seat in starting:
            self._start(seat)
        # Its thread no longer reads: what it answered so far must not wait for its next read.
        self._sender.release(old.ident)

    def _watch(self):
        lock = self._lock
        seen = -1
        idle_ticks = 0
        while True:
            time.sleep(TAKEOVER_TICK_S)
            starting = None
            park = False
            with lock:
                seat = self._inline
                if seat is None:
                    idle_ticks += 1
                    if idle_ticks >= WATCHER_IDLE_TICKS:
                        idle_ticks = 0
                        park = self._watcher_parked = True
                else:
                    idle_ticks = 0
                    count = self._inline_count
                    if count == seen:
                        starting = self._hand_over()
                    seen = count
            if starting is not None:
                try:
                    self._after_hand_over(seat, starting)
                except OSError:
                    pass  # the front is gone: the reader sees EOF
            if park:
                # The reader releases it (once) when it next starts a request inline.
                self._watcher_wake.acquire()


# A RequestTimeout landing halfway through a hand-over would leave the channel without a reader.
protect(InlineThreadExecutor.stop_reading_inline)

Executor = InlineThreadExecutor
