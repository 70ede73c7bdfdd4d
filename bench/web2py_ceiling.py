"""The web2py scenario's ceiling: what the application alone costs, with no HTTP and no server.

``--processes`` processes (as many as the servers under test run) each import web2py as a
worker does (work in the tree, ``global_settings.web2py_runtime_handler = True`` before
``import gluon.main``) and call ``gluon.main.wsgibase`` in a loop with the environ a server makes
for wrk's GET (Host header only, no cookie), reading each body to its end and closing it. After
``--warmup`` seconds of calls, all processes start the measured ``--duration`` together; then
one line ``CEILING_JSON {...}`` on stdout gives the calls answered, their seconds, the CPU every
process used in that window (time.process_time: all its threads) and the time of one call.

Run by bench/ceiling.ts, with the servers' interpreter, on the same cores, in the same run;
by hand:

    /usr/bin/python3 bench/web2py_ceiling.py --folder /tmp/w2p-copy --path /welcome/default/index
"""

import argparse
import io
import json
import os
import sys
import time


def make_environ(path, port):
    """What a WSGI server gives web2py for ``GET path HTTP/1.1`` with ``Host: 127.0.0.1:port``."""
    return {
        'REQUEST_METHOD': 'GET', 'SCRIPT_NAME': '', 'PATH_INFO': path, 'QUERY_STRING': '',
        'REQUEST_URI': path, 'SERVER_NAME': '127.0.0.1', 'SERVER_PORT': str(port),
        'SERVER_PROTOCOL': 'HTTP/1.1', 'SERVER_SOFTWARE': 'ceiling', 'REMOTE_ADDR': '127.0.0.1',
        'REMOTE_PORT': '40000', 'HTTP_HOST': '127.0.0.1:%d' % port,
        'wsgi.version': (1, 0), 'wsgi.url_scheme': 'http', 'wsgi.input': io.BytesIO(b''),
        'wsgi.errors': sys.stderr, 'wsgi.multithread': False, 'wsgi.multiprocess': True,
        'wsgi.run_once': False, 'wsgi.input_terminated': True,
    }


def load(folder):
    os.chdir(folder)
    sys.path.insert(0, folder)
    from gluon.settings import global_settings
    global_settings.web2py_runtime_handler = True
    import gluon.main
    return gluon.main.wsgibase


def call(app, path, port):
    """One request: the status line; the body is read to its end and closed, as a server does."""
    status = []

    def start_response(line, headers, exc_info=None):
        status.append(line)
        return lambda data: None

    body = app(make_environ(path, port), start_response)
    try:
        for _chunk in body:
            pass
    finally:
        close = getattr(body, 'close', None)
        if close is not None:
            close()
    return status[0] if status else ''


def child(args, ready_w, go_r, out_w):
    app = load(args.folder)
    warm_until = time.monotonic() + args.warmup
    status = call(app, args.path, args.port)
    while time.monotonic() < warm_until:
        status = call(app, args.path, args.port)
    if not status.startswith('200'):
        raise SystemExit('ceiling: %s answered %r, not 200' % (args.path, status))
    os.write(ready_w, b'r')
    os.read(go_r, 1)  # every process is warm: measure together
    times = []
    cpu0 = time.process_time()
    t0 = time.monotonic()
    end = t0 + args.duration
    now = t0
    while now < end:
        call(app, args.path, args.port)
        after = time.monotonic()
        times.append(after - now)
        now = after
    result = {'requests': len(times), 'seconds': now - t0, 'cpuS': time.process_time() - cpu0,
              'times': sorted(times)}
    os.write(out_w, (json.dumps(result) + '\n').encode())


def percentile(sorted_values, share):
    if not sorted_values:
        return float('nan')
    return sorted_values[min(len(sorted_values) - 1, int(share * len(sorted_values)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--folder', required=True, help='the web2py tree (a copy: web2py writes in it)')
    parser.add_argument('--path', default='/welcome/default/index')
    parser.add_argument('--processes', type=int, default=2)
    parser.add_argument('--duration', type=float, default=8)
    parser.add_argument('--warmup', type=float, default=2)
    parser.add_argument('--port', type=int, default=8000, help='SERVER_PORT and Host (nothing listens)')
    args = parser.parse_args()
    folder = os.path.abspath(args.folder)
    args.folder = folder
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    out_r, out_w = os.pipe()
    pids = []
    for _ in range(args.processes):
        pid = os.fork()
        if pid == 0:
            status = 0
            try:
                child(args, ready_w, go_r, out_w)
            except BaseException as error:  # the parent sees a missing result; say why here
                sys.stderr.write('ceiling: %s: %s\n' % (type(error).__name__, error))
                status = 1
            finally:
                sys.stderr.flush()
                os._exit(status)
        pids.append(pid)
    for fd in (ready_w, go_r, out_w):
        os.close(fd)
    ready = 0
    while ready < args.processes:
        got = os.read(ready_r, args.processes - ready)
        if not got:
            break  # a process died while warming up
        ready += len(got)
    os.write(go_w, b'g' * ready)
    with os.fdopen(out_r) as results:
        per_process = [json.loads(line) for line in results]
    failed = sum(1 for pid in pids if os.waitpid(pid, 0)[1] != 0)
    if failed or len(per_process) != args.processes:
        raise SystemExit('ceiling: %d of %d processes failed' % (failed, args.processes))
    times = sorted(t for r in per_process for t in r['times'])
    requests = sum(r['requests'] for r in per_process)
    print('CEILING_JSON ' + json.dumps({
        'processes': args.processes,
        'requests': requests,
        'seconds': max(r['seconds'] for r in per_process),
        'rps': sum(r['requests'] / r['seconds'] for r in per_process),
        'cpuS': sum(r['cpuS'] for r in per_process),
        'p50Ms': percentile(times, 0.5) * 1000,
        'p90Ms': percentile(times, 0.9) * 1000,
        'p99Ms': percentile(times, 0.99) * 1000,
        'maxMs': times[-1] * 1000 if times else float('nan'),
        'meanMs': sum(times) / len(times) * 1000 if times else float('nan'),
    }), flush=True)


if __name__ == '__main__':
    main()
