"""Launcher of web2py's scheduler for the server's -K: ``<python> w2n_scheduler.py <folder>/web2py.py -K APP[:GROUP...]``.

It runs web2py.py in this very process as ``python web2py.py -K APP`` would (the same argv and
``__main__``, the script's folder first on sys.path, this launcher's folder taken off it), with one
addition: whenever the scheduler records its heartbeat in its ``scheduler_worker`` row, the
server is told, as a line ``heartbeat STATUS`` on file descriptor 3 (a pipe of the server's own,
not the scheduler's output, which tasks print to as well). The status page and /metrics show
the age of the last one.

web2py's scheduler says that moment only in a debug record of its logger
(``........recording heartbeat (STATUS)``, gluon/scheduler.py send_heartbeat), and ``-K`` runs at
WARNING, where debug records are never made. So the scheduler's logger (``web2py.scheduler.*``)
is made at DEBUG level with a filter that tells the server of each heartbeat record, then lets a
record through only if the level web2py set (its parent's) lets it through: the scheduler's
output stays web2py's own, with no debug flood. The first heartbeat (the row inserted) logs
nothing in web2py, so the first one the server sees is the second, a heartbeat period later.
"""
import logging
import os
import re
import runpy
import sys

#: The descriptor the server reads heartbeats from (the fourth of the spawn's stdio).
HEARTBEAT_FD = 3
#: The scheduler's logger is ``web2py.scheduler.<host>#<pid>`` (gluon/scheduler.py IDENTIFIER).
SCHEDULER_LOGGER_PREFIX = 'web2py.scheduler.'
HEARTBEAT_MESSAGE = re.compile(r'^\.*recording heartbeat(?: \((\w+)\))?')


def tell_heartbeat(status):
    try:
        os.write(HEARTBEAT_FD, ('heartbeat %s\n' % (status or 'ACTIVE')).encode('ascii', 'replace'))
    except OSError:
        pass  # not started by the server (no descriptor 3): nobody to tell


class HeartbeatFilter(logging.Filter):
    """On the scheduler's logger: tells each heartbeat; passes what web2py's own level would."""

    def __init__(self, logger):
        super().__init__()
        self.logger = logger

    def filter(self, record):
        if record.levelno == logging.DEBUG:
            try:
                match = HEARTBEAT_MESSAGE.match(record.getMessage())
            except Exception:  # a record whose arguments do not fit its message: not ours to judge
                match = None
            if match is not None:
                tell_heartbeat(match.group(1))
        parent = self.logger.parent
        return record.levelno >= (parent.getEffectiveLevel() if parent is not None else logging.WARNING)


def logger_class(base):
    class SchedulerAwareLogger(base):
        """Loggers as before; the scheduler's gets the heartbeat filter and DEBUG level."""

        def __init__(self, name, *args, **kwargs):
            super().__init__(name, *args, **kwargs)
            if name.startswith(SCHEDULER_LOGGER_PREFIX):
                self.addFilter(HeartbeatFilter(self))
                self.setLevel(logging.DEBUG)

    return SchedulerAwareLogger


def main():
    if len(sys.argv) < 2:
        sys.exit('usage: w2n_scheduler.py /path/to/web2py.py -K APP[:GROUP...]')
    here = os.path.dirname(os.path.abspath(__file__))
    script = os.path.abspath(sys.argv[1])
    del sys.argv[0]
    sys.path[:] = [os.path.dirname(script)] + [path for path in sys.path if os.path.abspath(path or '.') != here]
    logging.setLoggerClass(logger_class(logging.getLoggerClass()))
    runpy.run_path(script, run_name='__main__')


if __name__ == '__main__':
    main()
