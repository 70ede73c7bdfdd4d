"""Where is every thread? SIGUSR2 dumps the worker's Python stacks to stderr.

The front sends SIGUSR2 to a worker it is about to kill as hung (a request past --timeout-grace)
and re-logs stderr line by line, so the log shows where each thread was stuck. faulthandler
writes from its C signal handler: it works even when the main thread never returns to Python.
The gevent class adds every greenlet's stack after it (workers/ggevent.py: add_greenlet_stacks).
"""

import faulthandler
import signal
import sys


def install_stack_dump():
    """At start: SIGUSR2 -> every thread's stack on stderr; the worker carries on."""
    faulthandler.register(signal.SIGUSR2, file=sys.stderr, all_threads=True, chain=False)
