"""Worker class ``sync``: one request at a time, all in the main thread.

The main thread reads frames between requests, and while a request waits for the front (body,
credit) it reads them itself (exchange.PumpSignals). A request busy in application code reads
nothing, though, so a helper thread (the Watcher) steps in:

- it exits the process as soon as the front closes the channel (POLLRDHUP: the front's close is
  final, and the main thread may not look at the channel for a long time);
- once a request has been in the application for SLOW_REQUEST_S, it reads and dispatches frames
  too, so that a CANCEL with FLAG_TIMEOUT reaches interrupt.py while the request is stuck.

Both read under ``read_lock``, and a pump re-checks what it waits for after taking it (the other
reader may have dispatched it). Fast requests never wake the Watcher: it polls for data only
while a request is slow, so the common path stays one thread.

A request is interrupted (CANCEL, interrupt.py) by a signal to the main thread:
MainThreadInterrupts, below.
"""

import select
import signal
import sys
import threading
import time
from collections import deque

from ..channel import ChannelClosed
from ..exchange import PumpSignals
from ..exits import EXIT_OK, EXIT_PROTOCOL, exit_now
from ..interrupt import DEFER_S, REPEAT_S, Interrupts, is_protected, protect
from ..protocol import ProtocolError
from ..wsgi import send_error
from .base import Outcome, outcome_of, run_safely

#: how long a request runs in the application before the Watcher reads frames for it
SLOW_REQUEST_S = 0.1
#: a real-time signal nobody else uses (SIGURG, ignored by default, where there is none)
INTERRUPT_SIGNAL = signal.SIGRTMIN + 1 if hasattr(signal, 'SIGRTMIN') else signal.SIGURG


class SyncExecutor:
    """One request at a time, in the main thread (see the module docstring)."""

    name = 'sync'
    capacity = 1
    is_multithread = False

    def __init__(self, threads=1):
        self._waiting = deque()
        self._channel = None
        self._router = None
        self._signals = None
        self.read_lock = threading.Lock()
        #: time.monotonic() when the running request started, None between requests
        self.running_since = None

    def prepare(self):
        """Nothing to patch."""

    def sender(self, sock):
        """Frames are written at once (channel.DirectSender)."""
        return None

    def signals(self):
        self._signals = PumpSignals(self._pump)
        return self._signals

    def submit(self, exchange):
        # Only queued: the loop in serve() runs it, never the dispatch that received it.
        self._waiting.append(exchange)

    def serve(self, channel, router, run):
        self._channel = channel
        self._router = router
        interrupts = MainThreadInterrupts(channel, self._signals, router.finish)
        interrupts.install()
        router.interrupt = interrupts.interrupt
        run = interrupts.guard(run)
        Watcher(self).start()
        waiting = self._waiting
        has_work = self._has_work
        try:
            while True:
                while waiting:
                    self.running_since = time.monotonic()
                    try:
                        run_safely(run, waiting.popleft())
                    finally:
                        self.running_since = None
                if router.is_drained:
                    return Outcome(Outcome.DRAINED)
                self._pump(has_work)
        except ChannelClosed as closed:
            return outcome_of(closed)
        except OSError:
            return Outcome(Outcome.CLOSED)  # a PONG could not be sent: the front is gone

    def _has_work(self):
        return bool(self._waiting) or self._router.is_drained

    def _pump(self, is_done=None):
        """Read one batch of frames and dispatch them, unless ``is_done()`` became true while
        this waited for the read lock. Raises ChannelClosed."""
        with self.read_lock:
            if is_done is not None and is_done():
                return
            self.read_and_dispatch()

    def read_and_dispatch(self):
        """One batch; the caller holds read_lock."""
        frames = self._channel.read_frames()
        try:
            self._router.dispatch(frames)
        except ProtocolError as error:
            raise ChannelClosed(error) from None


# A RequestTimeout must not land in the main thread halfway through a batch of frames.
protect(SyncExecutor._pump, SyncExecutor.read_and_dispatch)

Executor = SyncExecutor


class Watcher(threading.Thread):
    """The sync worker's second reader: hang-up at once, frames while a request is slow."""

    def __init__(self, executor):
        super().__init__(name='w2n-sync-watch', daemon=True)
        self._executor = executor
        fd = executor._channel.fileno()
        hangup = getattr(select, 'POLLRDHUP', 0) | select.POLLHUP | select.POLLERR | select.POLLNVAL
        self._hangup = hangup
        self._idle = select.poll()
        self._idle.register(fd, hangup)
        self._busy = select.poll()
        self._busy.register(fd, hangup | select.POLLIN)

    def run(self):
        executor = self._executor
        wait_ms = int(SLOW_REQUEST_S * 1000)
        while True:
            since = executor.running_since
            is_slow = since is not None and time.monotonic() - since >= SLOW_REQUEST_S
            events = (self._busy if is_slow else self._idle).poll(wait_ms)
            if any(mask & self._hangup for _fd, mask in events):
                exit_now(EXIT_OK)
            if events and is_slow:
                self._read(executor)

    def _read(self, executor):
        with executor.read_lock:
            # The main thread may have read it meanwhile (the request ended and it pumped).
            if not self._busy.poll(0):
                return
            try:
                executor.read_and_dispatch()
            except ChannelClosed as closed:
                self._fail(closed)
            except OSError:
                exit_now(EXIT_OK)  # a PONG could not be sent: the front is gone

    def _fail(self, closed):
        """The front closed the channel or broke the protocol: exit as __main__ would."""
        error = closed.error
        if error is None:
            exit_now(EXIT_OK)
        sys.stderr.write('web2py-on-node worker: %s\n' % error)
        send_error(self._executor._channel, 0, error.code, error.message)
        exit_now(EXIT_PROTOCOL)


class MainThreadInterrupts(Interrupts):
    """sync: the request runs in the main thread; a signal's handler raises there.

    A signal (unlike an async exception) also breaks ``time.sleep`` and other blocking calls. The
    handler runs in the main thread itself, so its checks (which request runs, is it inside a
    protected function) cannot race with that request.
    """

    def __init__(self, channel, signals, finish):
        super().__init__(channel, signals, finish)
        self._current = lambda: True
        self._main_ident = threading.main_thread().ident
        #: the exchange the main thread runs (or ran last)
        self._running = None
        #: the exchange the handler last raised RequestTimeout in
        self._raised = None

    def install(self):
        """From the main thread, before serving."""
        signal.signal(INTERRUPT_SIGNAL, self._on_signal)

    def _enter(self, exchange):
        self._running = exchange
        return super()._enter(exchange)

    def _on_signal(self, _signum, frame):
        exchange = self._running
        if exchange is None or not exchange.is_interrupted or exchange.runner is None:
            return
        if is_protected(frame):
            return  # the signalling thread tries again in DEFER_S
        self._raised = exchange
        raise exchange.stop_with()

    def _after_interrupt(self):
        self._running = self._raised = None

    def _deliver(self, exchange, _runner):
        thread = threading.Thread(target=self._keep_signalling, args=(exchange,),
                                  name='w2n-interrupt-%d' % exchange.request_id)
        thread.daemon = True
        thread.start()

    def _keep_signalling(self, exchange):
        while exchange.runner is not None:
            signal.pthread_kill(self._main_ident, INTERRUPT_SIGNAL)
            time.sleep(REPEAT_S if self._raised is exchange else DEFER_S)
