"""Measures one worker alone (no HTTP, no Node): requests per second over the channel.

A fake front keeps ``--concurrency`` requests in flight on one worker process and sends a new
REQUEST for each one answered, in one send per batch, as the Node front's cork batching does.
Not a test (a timing is never an assertion); run it by hand:

    python3 bench/worker-micro.py --worker-class thread --threads 8
    /usr/bin/python3 bench/worker-micro.py --web2py /tmp/w2p-copy --path /welcome/default/index \
        --worker-class gevent --requests 300 --warmup 30 --concurrency 10
"""

import argparse
import os
import struct
import sys
import time

# The worker test harness (a fake front) lives with the Python tests.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'python'))

from worker_harness import WorkerProcess, encode_pairs, environ_pairs, wsgi_app  # noqa: E402
from web2py_on_node_worker import protocol as p  # noqa: E402


def run(args):
    app = {'kind': 'web2py', 'folder': args.web2py} if args.web2py else wsgi_app(args.app)
    with WorkerProcess(app, worker_class=args.worker_class, threads=args.threads,
                       python=args.python) as worker:
        ready = worker.wait_ready()
        payload = encode_pairs(environ_pairs(path=args.path, headers={
            'Host': 'localhost:8000', 'User-Agent': 'bench', 'Accept': '*/*'}))
        header = struct.Struct('>BBHII')

        def requests(first_id, count):
            return b''.join(header.pack(p.REQUEST, p.FLAG_END, 0, request_id, len(payload)) + payload
                            for request_id in range(first_id, first_id + count))

        sock = worker.sock
        decoder = worker.decoder
        next_id = 1
        # warm-up
        sock.sendall(requests(next_id, args.concurrency))
        next_id += args.concurrency
        done = 0
        started = None
        cpu_start = None
        measured = 0
        target = args.requests + args.warmup
        while done < target:
            data = sock.recv(1 << 20)
            if not data:
                raise SystemExit('worker closed the channel:\n' + worker.stderr)
            finished = 0
            for frame_type, flags, _id, _payload in decoder.feed(data):
                if flags & p.FLAG_END or frame_type == p.ERROR:
                    finished += 1
            done += finished
            if started is None and done >= args.warmup:
                started = time.perf_counter()
                measured = done
            # One new request per answer, until every request of the run has been sent.
            count = min(finished, target - (next_id - 1))
            if count > 0:
                sock.sendall(requests(next_id, count))
                next_id += count
            if started is not None and cpu_start is None:
                cpu_start = worker_cpu_seconds(worker.proc.pid)
        elapsed = time.perf_counter() - started
        cpu = worker_cpu_seconds(worker.proc.pid) - cpu_start
        worker.shutdown()
        worker.wait()
        count = done - measured
        rate = count / elapsed
        print('%-6s threads=%-2d python=%s  %8.0f req/s  worker CPU %5.1f us/request  (%d requests, concurrency %d)'
              % (ready['workerClass'], ready['capacity'], ready['python'], rate, cpu / count * 1e6, count,
                 args.concurrency))
        return rate


def worker_cpu_seconds(pid):
    """user + system CPU time of a process, from /proc (Linux)."""
    with open('/proc/%d/stat' % pid) as stream:
        fields = stream.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--app', default='hello:app', help='fixture module:callable')
    parser.add_argument('--worker-class', default='thread', choices=('thread', 'sync', 'gevent'))
    parser.add_argument('--threads', type=int, default=8)
    parser.add_argument('--requests', type=int, default=100000)
    parser.add_argument('--warmup', type=int, default=5000)
    parser.add_argument('--concurrency', type=int, default=50)
    parser.add_argument('--python', default=sys.executable)
    parser.add_argument('--web2py', metavar='DIR', help='serve this web2py tree (a copy: web2py writes in it) instead of --app')
    parser.add_argument('--path', default='/', help='PATH_INFO of every request')
    run(parser.parse_args())


if __name__ == '__main__':
    main()
