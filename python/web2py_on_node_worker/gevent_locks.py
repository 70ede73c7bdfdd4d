"""``fcntl.flock`` and ``fcntl.lockf`` that wait off the gevent hub (worker class gevent only).

web2py holds an exclusive flock on a request's session file for the whole request (portalocker
calls ``fcntl.flock(file.fileno(), LOCK_EX)``). A blocking flock is one plain system call: under
gevent it stops every greenlet of the process, including the one that holds the lock and would
release it after its next switch, so two requests with the same session cookie hang the worker
(gevent issue 1657). The wrappers installed here try the non-blocking call first (uncontended,
that is the only system call), and only if it would block, wait in a thread, so other greenlets
keep running. The threads come from a pool of their own: waiters parked in gevent's hub pool
would starve what else runs there (gevent's default DNS resolver).
"""

import errno
import fcntl
import os

#: errno of a LOCK_NB call that would block (flock says EWOULDBLOCK, lockf EACCES or EAGAIN)
_WOULD_BLOCK = frozenset((errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES))


def patch_fcntl(max_waiters):
    """Replace fcntl.flock and fcntl.lockf. Call after monkey.patch_all(), before the app import.

    ``max_waiters`` bounds the waiting threads (the executor's capacity: one per request at most).
    """
    original_flock = fcntl.flock
    original_lockf = fcntl.lockf
    pools = []

    def wait_in_thread(function, *args):
        if not pools:
            from gevent.threadpool import ThreadPool
            pools.append(ThreadPool(max(1, max_waiters)))
        return pools[0].apply(function, args)

    def flock_then_close(duplicate, operation):
        try:
            return original_flock(duplicate, operation)
        finally:
            os.close(duplicate)

    def flock(fd, operation):
        if operation & (fcntl.LOCK_NB | fcntl.LOCK_UN):
            return original_flock(fd, operation)
        try:
            return original_flock(fd, operation | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in _WOULD_BLOCK:
                raise
        # A flock belongs to the open file description. The thread locks through a duplicate
        # descriptor it closes itself: the lock stays held by the request's own descriptor, and
        # if the request is interrupted (RequestTimeout) and closes its file meanwhile, the late
        # lock dies with the duplicate instead of landing on whatever reuses the number.
        return wait_in_thread(flock_then_close, os.dup(_fileno(fd)), operation)

    def lockf(fd, cmd, length=0, start=0, whence=0):
        if cmd & fcntl.LOCK_NB or cmd == fcntl.LOCK_UN:
            return original_lockf(fd, cmd, length, start, whence)
        try:
            return original_lockf(fd, cmd | fcntl.LOCK_NB, length, start, whence)
        except OSError as error:
            if error.errno not in _WOULD_BLOCK:
                raise
        # POSIX locks belong to the process and closing any descriptor of the file drops them,
        # so no duplicate here; they only ever wait for another process.
        return wait_in_thread(original_lockf, fd, cmd, length, start, whence)

    flock.__doc__ = original_flock.__doc__
    lockf.__doc__ = original_lockf.__doc__
    fcntl.flock = flock
    fcntl.lockf = lockf


def _fileno(fd):
    return fd if isinstance(fd, int) else fd.fileno()
