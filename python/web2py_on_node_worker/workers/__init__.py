"""The worker classes, one module each (as gunicorn's ``workers/``): how a worker runs requests.

- ``thread`` (thread.py): a pool of threads;
- ``sync`` (sync.py): one request at a time, in the main thread;
- ``gevent`` (ggevent.py): greenlets, with the standard library monkey-patched.

base.py holds what they share and describes the face every executor has. A class's module is
imported only when HANDSHAKE asks for that class, so a thread or sync worker never loads gevent.
"""

import importlib
import sys

#: HANDSHAKE's workerClass -> the module of this package that runs it
_MODULES = {'thread': 'thread', 'sync': 'sync', 'gevent': 'ggevent'}
WORKER_CLASSES = tuple(_MODULES)


class ExecutorUnavailable(Exception):
    """The requested worker class cannot run in this Python (e.g. gevent is not installed)."""


def make_executor(worker_class, threads):
    """The executor for HANDSHAKE's workerClass. Raises ExecutorUnavailable."""
    try:
        module_name = _MODULES[worker_class]
    except (KeyError, TypeError):
        raise ExecutorUnavailable('unknown worker class %r (expected one of %s)'
                                  % (worker_class, ', '.join(WORKER_CLASSES))) from None
    try:
        module = importlib.import_module('.' + module_name, __name__)
    except ImportError as error:
        if worker_class != 'gevent':
            raise
        raise ExecutorUnavailable(
            "worker class 'gevent' needs the gevent package, which %s cannot import (%s); "
            "install it (pip install gevent, or apt install python3-gevent) or use "
            "--worker-class thread" % (sys.executable, error)) from None
    return module.Executor(threads)
