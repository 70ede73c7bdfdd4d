"""Per-request cProfile dumps (``-F/--profiler DIR``), as web2py's gluon.main.appfactory makes:
one ``req_<uuid>.prof`` per request in the folder, readable with pstats. The name is web2py's:
``"req_%s.prof" % web2py_uuid()``, a version-4 UUID as ``str(uuid.UUID(...))`` writes it (with
dashes), so tools that list web2py's profiles find these too.

Requests are profiled one at a time: from Python 3.12 cProfile uses sys.monitoring, which admits
one profiler per process, and before that concurrent threads would still be timed together.
Profiling is a diagnostic mode, so the lost concurrency is the price of clean profiles.
"""

import cProfile
import os
import sys
import threading
import uuid


def profiled(run, folder):
    """Wrap ``run(exchange)`` so that each call is profiled into ``folder``.

    The file is written before the request counts as done, so a draining worker never exits
    with a profile half written.
    """
    lock = threading.Lock()

    def run_profiled(exchange):
        with lock:
            profile = cProfile.Profile()
            profile.enable()
            try:
                run(exchange)
            finally:
                profile.disable()
                path = os.path.join(folder, 'req_%s.prof' % uuid.uuid4())
                try:
                    profile.dump_stats(path)
                except OSError as error:
                    sys.stderr.write('web2py-on-node worker: cannot write %s: %s\n' % (path, error))

    return run_profiled
