"""Stopping one request whose deadline passed (CANCEL with FLAG_TIMEOUT), or whose client went
away (CANCEL), in its own thread.

For a deadline the front has already answered 504; for a client gone, nobody waits for the
answer, but the request still holds its slot in the front (it counts against ``-w``) until the
worker says it ended. The worker raises RequestTimeout (a deadline) or RequestCancelled (a
client gone; RequestTimeout is a kind of it) inside the thread or
greenlet that runs the request, as mod_wsgi's interrupt-timeout does, so that application code
stuck in Python (a loop, a sleep) unwinds, its iterable's close() runs and its slot is free for
the next request; the other requests carry on. How the exception gets there depends on the class:

- thread: ``PyThreadState_SetAsyncExc``. It lands at the thread's next bytecode, so a thread
  blocked inside one C call (``time.sleep(60)`` in a real thread) gets it when the call returns.
- gevent: ``greenlet.throw`` from the hub, at once even in ``time.sleep`` (patched). A greenlet
  spinning in pure Python never yields, so the hub never reads the CANCEL: only the front's
  ``--timeout-grace`` kill (after a SIGUSR2 stack dump) ends that one.
- sync: a signal to the main thread whose handler raises, which also breaks a blocking sleep.

Two rules keep the channel sound: an interrupt never lands while its target is inside a
protected function (a frame half written on the socket, or a batch of frames half dispatched,
would break every other request), it waits and retries; and it is repeated every REPEAT_S while
the request still runs, because ``except:`` (or ``except BaseException``) in an application
swallows it. Once the request has ended, the front gets its last word: the END frame, if it
went out, else ``ERROR W2N_ERR_WORKER_TIMEOUT`` (``W2N_ERR_REQUEST_CANCELLED`` for a client
gone); the front frees the slot on it.

Interrupts, below, is the thread class's; the gevent and sync classes subclass it in their own
modules (workers/ggevent.py, workers/sync.py).
"""

import sys
import threading
import time
import traceback

from .channel import DirectSender, HoldingSender
from .exchange import RequestCancelled, RequestTimeout
from .protocol import ERR_REQUEST_CANCELLED, ERR_WORKER_TIMEOUT
from .wsgi import send_error

#: how soon a deferred interrupt (target inside a protected function) is tried again
DEFER_S = 0.01
#: how often a request that is still running after an interrupt is interrupted again
REPEAT_S = 1.0

_PROTECTED = set()


def protect(*functions):
    """Interrupts wait while any of ``functions`` is on the target's stack."""
    _PROTECTED.update(function.__code__ for function in functions)


def is_protected(frame):
    while frame is not None:
        if frame.f_code in _PROTECTED:
            return True
        frame = frame.f_back
    return False


# A frame half written would break every other request (the gevent class protects its own sender).
protect(DirectSender.send, DirectSender.send_parts, HoldingSender.send, HoldingSender.send_parts,
        HoldingSender.release)


class Interrupts:
    """Which request each thread runs, and how to stop one. This base class is for threads."""

    def __init__(self, channel, signals, finish):
        self._channel = channel
        self._signals = signals
        #: Signals.lock: guards exchange.runner and exchange.is_interrupted
        self._lock = signals.lock
        #: Router.finish: idempotent, called again in case RequestTimeout cut the runner's own call
        self._finish = finish
        #: -> what exchange.runner holds for the calling thread or greenlet
        self._current = threading.get_ident

    # --- the request's side

    def guard(self, run):
        """``run(exchange)`` that records who runs the request and absorbs RequestTimeout."""
        enter = self._enter
        leave = self._leave

        def run_guarded(exchange):
            caught = None
            try:
                if enter(exchange):
                    run(exchange)
            except RequestCancelled as error:
                caught = error
            finally:
                # A repeated interrupt may land here too: leave() is idempotent, so try again.
                while True:
                    try:
                        leave(exchange, caught)
                        break
                    except RequestCancelled as error:
                        caught = caught or error
        return run_guarded

    def _enter(self, exchange):
        """False when the deadline passed while the request waited for a slot: skip it."""
        with self._lock:
            if exchange.is_interrupted:
                return False
            exchange.runner = self._current()
        return True

    def _leave(self, exchange, caught):
        with self._lock:
            exchange.runner = None
            is_interrupted = exchange.is_interrupted
        response = exchange.response
        exchange.response = None  # it points back to the exchange: no cycle left for the GC
        if not is_interrupted:
            return
        self._after_interrupt()
        self._finish(exchange)
        stop_with = exchange.stop_with
        is_timeout = stop_with is RequestTimeout
        sys.stderr.write('web2py-on-node worker: request %d ended after %s%s\n'
                         % (exchange.request_id, 'its deadline' if is_timeout else 'its client left',
                            ' (%s raised)' % type(caught).__name__ if caught else ''))
        if response is None or not response.is_complete:
            trace = ''.join(traceback.format_exception(type(caught), caught, caught.__traceback__)) if caught else ''
            if is_timeout:
                code, message = ERR_WORKER_TIMEOUT, 'request stopped: it ran past the front\'s deadline'
            else:
                code, message = ERR_REQUEST_CANCELLED, 'request stopped: its client went away'
            send_error(self._channel, exchange.request_id, code, message, trace)

    def _after_interrupt(self):
        """Threads: drop an interrupt still pending, so it cannot hit the thread's next request."""
        _set_async_exc(threading.get_ident(), None)

    # --- the reader's side

    def interrupt(self, exchange, is_timeout=True):
        """CANCEL arrived for ``exchange`` (the reader calls this); with FLAG_TIMEOUT if ``is_timeout``.

        Cancelled and interrupted are set under one lock hold, the one _leave() reads them under:
        a request ending right now either sees both (and sends its last word) or neither (and
        has answered by itself).
        """
        with self._lock:
            exchange.is_cancelled = True
            self._signals.notify(exchange)
            if exchange.is_interrupted:
                if is_timeout:
                    exchange.stop_with = RequestTimeout  # the deadline passed while it was stopping
                return
            exchange.is_interrupted = True
            exchange.stop_with = RequestTimeout if is_timeout else RequestCancelled
            runner = exchange.runner
        if runner is None:
            # Not started (it will be skipped), or just ended (it will send its last word).
            return
        sys.stderr.write('web2py-on-node worker: request %d %s; raising %s in it\n'
                         % (exchange.request_id, 'passed its deadline' if is_timeout else 'lost its client',
                            exchange.stop_with.__name__))
        self._deliver(exchange, runner)

    def _deliver(self, exchange, ident):
        if _set_async_exc is None:
            sys.stderr.write('web2py-on-node worker: cannot interrupt a thread here (no ctypes)\n')
            return
        thread = threading.Thread(target=self._keep_raising, args=(exchange, ident),
                                  name='w2n-interrupt-%d' % exchange.request_id)
        thread.daemon = True
        thread.start()

    def _keep_raising(self, exchange, ident):
        while True:
            with self._lock:
                if exchange.runner != ident:
                    return
                if is_protected(sys._current_frames().get(ident)):
                    delay = DEFER_S
                else:
                    # Under the lock: _leave() clears runner under it, then drops what is pending.
                    _set_async_exc(ident, exchange.stop_with)
                    delay = REPEAT_S
            time.sleep(delay)


def _async_exc_setter():
    try:
        import ctypes
    except ImportError:
        return None
    function = ctypes.pythonapi.PyThreadState_SetAsyncExc

    def set_async_exc(ident, exception_class):
        """Schedule ``exception_class`` in thread ``ident``; None drops the pending one."""
        exception = ctypes.py_object(exception_class) if exception_class is not None else None
        function(ctypes.c_ulong(ident), exception)

    return set_async_exc


_set_async_exc = _async_exc_setter()
