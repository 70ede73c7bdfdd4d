"""One request in flight, as the reader thread and the application thread share it.

The reader (the thread that reads the channel) delivers what the front sends for a request:
body bytes, response credit, cancellation, the FILE_OPENED answer. The thread running the
application waits for those. How it waits depends on the executor:

- ``Signals``: threads wait on a Condition that the reader notifies. One lock guards every
  exchange; a Condition is made only for an exchange that actually waits, so a hello-world
  request never builds one. The gevent class waits on a gevent Event instead, kept in the same
  slot (``GreenletSignals``, workers/ggevent.py).
- ``PumpSignals``: one thread does everything (sync mode), so waiting means reading and
  dispatching frames itself until what it waits for has arrived.
"""

import threading


class RequestCancelled(BaseException):
    """Raised inside a request whose client went away (CANCEL; interrupt.py): nobody waits for it.

    A BaseException, like KeyboardInterrupt, so that ``except Exception`` in an application does
    not swallow it.
    """


class RequestTimeout(RequestCancelled):
    """Raised inside a request whose deadline passed (the front has answered 504)."""


class Exchange:
    """The state of one request id. Fields the reader writes are changed under Signals.lock."""

    __slots__ = ('request_id', 'payload', 'body', 'credit', 'is_cancelled', 'file_opened', 'condition',
                 'runner', 'is_interrupted', 'stop_with', 'response', 'websocket')

    def __init__(self, request_id, payload, response_window):
        self.request_id = request_id
        #: the REQUEST payload: environ pairs, decoded by the thread that runs the request
        self.payload = payload
        #: the body.InputStream, or None when the REQUEST had END (no body)
        self.body = None
        #: response body bytes this worker may still send before it needs a CREDIT
        self.credit = response_window
        self.is_cancelled = False
        #: None until FILE_OPENED arrives, then True (the front opened it) or False
        self.file_opened = None
        self.condition = None
        #: who runs it, while it runs (a thread ident, a greenlet, True for the sync main thread)
        self.runner = None
        #: CANCEL came: stop it (interrupt.py), then tell the front it ended
        self.is_interrupted = False
        #: what is raised in it once interrupted: interrupt.RequestTimeout or RequestCancelled
        self.stop_with = None
        #: the wsgi.Response, once the request runs: whether its END frame already went out
        self.response = None
        #: the websocket.WebSocket of a REQUEST with FLAG_UPGRADE, else None
        self.websocket = None


class Signals:
    """Waiting by Condition: the reader runs in its own thread (or greenlet)."""

    def __init__(self):
        self.lock = threading.Lock()

    def wait_until(self, exchange, is_ready, timeout=None):
        """Block until ``is_ready()`` (evaluated under the lock) is true; False on timeout."""
        with self.lock:
            if is_ready():
                return True
            condition = exchange.condition
            if condition is None:
                condition = exchange.condition = threading.Condition(self.lock)
            return condition.wait_for(is_ready, timeout)

    def notify(self, exchange):
        """Wake the thread waiting on ``exchange``. The caller holds the lock."""
        if exchange.condition is not None:
            exchange.condition.notify_all()


class PumpSignals(Signals):
    """Waiting by pumping: the waiting thread is also the only reader (sync mode).

    ``pump(is_done)`` reads and dispatches one batch of frames unless ``is_done()`` is already true
    (another thread may have dispatched the awaited frame: see workers/sync.py); it raises
    channel.ChannelClosed when the front is gone. Timeouts are not honoured: only the front can
    unblock a pump.
    """

    def __init__(self, pump):
        super().__init__()
        self._pump = pump

    def wait_until(self, exchange, is_ready, timeout=None):
        lock = self.lock

        def is_done():
            with lock:
                return is_ready()

        while not is_done():
            self._pump(is_done)
        return True

    def notify(self, exchange):
        pass
