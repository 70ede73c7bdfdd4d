"""Bench only: run a web2py-on-node worker whose application calls are timed (web2py scenarios).

The bench starts ours with ``--python bench/app-cpu-python`` in the web2py scenarios; that shell
script runs the worker through this file, which wraps the loaded application so each call's CPU
(``time.thread_time``: the CPU of the thread that runs it, from the call to the return of its
body iterable) is added up. Every 100 ms at most, ``calls app_cpu_ns`` of this process is
rewritten to ``<tmp>/w2n-bench-app-cpu/<pid>``; the bench reads those files just before and after
a load (bench/app-cpu.ts), so the split "web2py's own call / the worker's code around it" of the
workers' CPU is measured in the same run as the ceiling (bench/web2py_ceiling.py), not guessed.

What it adds: two thread_time() calls per request, about 1 µs against a web2py page's 7,000+.
Thread CPU is right for the thread and sync classes, and for the gevent class as long as the
application does not yield to another greenlet inside a call (web2py's welcome page does not:
its file and SQLite I/O block; a contended monkey-patched lock could, rarely).
"""
import os
import sys
import tempfile
import time


def stats_dir():
    return os.path.join(tempfile.gettempdir(), 'w2n-bench-app-cpu')


class Totals:
    def __init__(self):
        self.calls = 0
        self.ns = 0
        self.written_at = 0.0
        self.path = os.path.join(stats_dir(), str(os.getpid()))
        os.makedirs(stats_dir(), exist_ok=True)

    def add(self, ns):
        self.calls += 1
        self.ns += ns
        now = time.monotonic()
        if now - self.written_at >= 0.1:
            self.written_at = now
            tmp = self.path + '.tmp'
            with open(tmp, 'w') as f:
                f.write('%d %d\n' % (self.calls, self.ns))
            os.replace(tmp, self.path)  # whole lines only, for the bench's reads


def timed(app, totals):
    def application(environ, start_response):
        t0 = time.thread_time_ns()
        body = app(environ, start_response)
        totals.add(time.thread_time_ns() - t0)
        return body
    return application


def main():
    worker_script = sys.argv[1]
    sys.argv = sys.argv[1:]
    here = os.path.dirname(os.path.abspath(worker_script))
    sys.path.insert(0, here)
    import web2py_on_node_worker.app as app_module
    load_app = app_module.load_app
    totals = Totals()
    app_module.load_app = lambda spec: timed(load_app(spec), totals)
    from web2py_on_node_worker.__main__ import main as worker_main
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or '.') != here]
    worker_main()


if __name__ == '__main__':
    main()
