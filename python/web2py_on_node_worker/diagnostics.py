"""Where is every thread? SIGUSR2 dumps the worker's Python stacks to stderr.

The front sends SIGUSR2 to a worker it is about to kill as hung (a request past --timeout-grace)
and re-logs stderr line by line, so the log shows where each thread was stuck. faulthandler
writes from its C signal handler: it works even when the main thread never returns to Python.
"""

import faulthandler
import signal
import sys


def install_stack_dump():
    """At start: SIGUSR2 -> every thread's stack on stderr; the worker carries on."""
    faulthandler.register(signal.SIGUSR2, file=sys.stderr, all_threads=True, chain=False)


def add_greenlet_stacks():
    """gevent: after the threads, also print every greenlet's stack (from the main thread).

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
