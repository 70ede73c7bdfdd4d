"""What every worker class shares: why serving ended (Outcome), and running one request safely.

A worker class (an "executor") is one module of this package, as gunicorn's ``workers/``: thread.py,
sync.py, ggevent.py. Each has an ``Executor`` class with the same face, used by __main__:

- ``Executor(threads)``; ``name``, ``capacity`` and ``is_multithread`` (wsgi.multithread);
- ``prepare()`` before the application is imported (gevent monkey-patches there, as web2py's
  handlers/web2py_on_gevent.py does before it imports gluon);
- ``sender(sock)``: what the Channel sends with (None: channel.DirectSender);
- ``signals()``: how a request waits for the reader (exchange.Signals or PumpSignals);
- ``submit(exchange)``: run a request (called by the reader through the Router);
- ``serve(channel, router, run)``: read and dispatch frames until the worker should exit; returns
  an Outcome. It wraps ``run`` with its interrupt guard (interrupt.py) and points
  ``router.interrupt`` at it, so that CANCEL stops the request in the thread or greenlet that
  runs it.
"""

import sys
import traceback

from ..channel import ChannelClosed

#: How long an exiting worker waits for its queued frames to be written (gevent queues them).
FLUSH_TIMEOUT_S = 5


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


def run_safely(run, exchange):
    """Requests report their own errors; anything escaping is a worker bug: log, carry on."""
    try:
        run(exchange)
    except ChannelClosed:
        raise  # sync mode: the front is gone; serve() ends
    except BaseException:  # noqa: B902 - a dying pool thread would silently lose capacity
        sys.stderr.write('web2py-on-node worker: internal error while serving a request\n')
        traceback.print_exc()
