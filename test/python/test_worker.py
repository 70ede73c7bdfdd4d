"""The worker as a process, driven over its fd-3 socket like the Node front drives it.

One contract suite runs per worker class (thread, sync, and gevent when this Python has it);
start-up and protocol failures are tested once.
"""

import glob
import hashlib
import importlib.util
import json
import os
import pstats
import socket
import subprocess
import sys
import tempfile
import time
import unittest

from worker_harness import (
    FIXTURE_WEB2PY, LAUNCHER, REPO, WorkerProcess, environ_pairs, encode_pairs, wsgi_app,
)
from web2py_on_node_worker import protocol as p

HAS_GEVENT = importlib.util.find_spec('gevent') is not None


def credit(worker, request_id, size):
    worker.send(p.CREDIT, 0, request_id, p._U32.pack(size))


def worker_descriptors_of(pid, marker):
    """The descriptors of process ``pid`` whose target holds ``marker``."""
    found = []
    for fd in os.listdir('/proc/%d/fd' % pid):
        try:
            target = os.readlink('/proc/%d/fd/%s' % (pid, fd))
        except OSError:
            continue
        if marker in target:
            found.append(target)
    return found


def descriptors_left(pid, marker, within_s=10.0):
    """The descriptors of ``pid`` holding ``marker`` once none are left, or after ``within_s``.

    A worker closes a request's descriptors as the request ends, which may be just after its
    last frame left: the test waits for the condition (polling /proc, the only place it shows)
    rather than reading it once at a moment the worker may not have reached."""
    deadline = time.monotonic() + within_s
    while True:
        found = worker_descriptors_of(pid, marker)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.01)


class WorkerContract:
    """Behaviour every worker class must show. Subclasses set WORKER_CLASS and THREADS."""

    WORKER_CLASS = None
    THREADS = 4

    def start(self, app='hello:app', **options):
        options.setdefault('worker_class', self.WORKER_CLASS)
        options.setdefault('threads', self.THREADS)
        worker = WorkerProcess(wsgi_app(app) if isinstance(app, str) else app, **options)
        self.addCleanup(worker.close)
        worker.wait_ready()
        return worker

    def test_ready_describes_the_worker(self):
        worker = self.start()
        self.assertEqual(worker.ready['protocol'], p.PROTOCOL_VERSION)
        self.assertEqual(worker.ready['pid'], worker.proc.pid)
        self.assertEqual(worker.ready['workerClass'], self.WORKER_CLASS)
        self.assertEqual(worker.ready['capacity'], 1 if self.WORKER_CLASS == 'sync' else self.THREADS)
        self.assertEqual(worker.ready['python'], '%d.%d.%d' % sys.version_info[:3])

    def test_publish_sends_one_frame_before_the_answer(self):
        worker = self.start('publisher:app', realtime_max_message=16)
        published = []

        def take_publish(frame):
            if frame[0] != p.PUBLISH:
                return False
            published.append(frame)
            return True

        worker.start_request(1, query='group=room&message=h%C3%A9')
        response = worker.collect(1, on_frame=take_publish)
        self.assertEqual(response.body, b'published')
        self.assertEqual(published, [(p.PUBLISH, 0, 0, bytes([4]) + b'room' + 'hé'.encode())])

    def test_publish_refuses_what_the_hub_would_not_take(self):
        worker = self.start('publisher:app', realtime_max_message=16)
        self.assertEqual(worker.request(1, query='size=17').body,
                         b'ValueError: a message of 17 bytes, over --realtime-max-message (16)')
        self.assertIn(b'ValueError', worker.request(2, query='group=' + 'g' * 256).body)
        off = self.start('publisher:app')  # realtimeMaxMessage 0: the hub is off
        self.assertIn(b'RuntimeError: the realtime hub is off', off.request(1).body)

    def test_hello_is_one_frame(self):
        worker = self.start()
        response = worker.request(1)
        self.assertEqual(len(response.frames), 1)
        self.assertEqual(response.frames[0][:2], (p.RESPONSE, p.FLAG_END))
        self.assertEqual(response.status, '200 OK')
        self.assertEqual(response.headers, [('Content-Type', 'text/plain'), ('Content-Length', '13')])
        self.assertEqual(response.body, b'Hello, World!')

    def test_the_heap_of_the_import_is_frozen_and_requests_are_not(self):
        # gc.freeze after the app loads: full collections skip the application's modules
        worker = self.start('gcstate:app')
        state = json.loads(worker.request(1).body)
        self.assertGreater(state['frozen'], 0)
        self.assertTrue(state['module_frozen'])
        self.assertFalse(state['request_frozen'])

    def test_many_pipelined_requests(self):
        worker = self.start()
        for request_id in range(1, 201):
            worker.start_request(request_id)
        seen = set()
        while len(seen) < 200:
            frame_type, flags, request_id, payload = worker.read_frame()
            self.assertEqual((frame_type, flags), (p.RESPONSE, p.FLAG_END))
            self.assertTrue(payload.endswith(b'Hello, World!'))
            seen.add(request_id)
        self.assertEqual(seen, set(range(1, 201)))

    def test_echo_environ_and_body(self):
        worker = self.start('echo:app')
        body = os.urandom(200000)  # within the request window: this test sends it all at once
        response = worker.request(1, method='POST', path='/caf\xe9', query='a=1&b=2', body=body,
                                  headers={'Content-Type': 'application/octet-stream', 'X-Custom': 'v'})
        data = json.loads(response.body)
        environ = data['environ']
        self.assertEqual(environ['PATH_INFO'], '/caf\xe9')
        self.assertEqual(environ['QUERY_STRING'], 'a=1&b=2')
        self.assertEqual(environ['REQUEST_METHOD'], 'POST')
        self.assertEqual(environ['CONTENT_TYPE'], 'application/octet-stream')
        self.assertEqual(environ['HTTP_X_CUSTOM'], 'v')
        self.assertEqual(environ['wsgi.url_scheme'], 'http')
        self.assertEqual(data['body_bytes'], len(body))
        self.assertEqual(data['body_sha256'], hashlib.sha256(body).hexdigest())
        for key in ('wsgi.version', 'wsgi.input', 'wsgi.errors', 'wsgi.multithread', 'wsgi.multiprocess',
                    'wsgi.run_once', 'wsgi.input_terminated', 'wsgi.file_wrapper'):
            self.assertIn(key, data['wsgi'])
        self.assertNotIn('PATH', environ)

    def test_large_upload_within_the_request_window(self):
        window = 64 * 1024
        worker = self.start('upload:app', request_window=window)
        size = 16 * 1024 * 1024 + 123
        digest = hashlib.sha256()
        block = os.urandom(50000)
        worker.send(p.REQUEST, 0, 1, encode_pairs(environ_pairs(method='PUT', body_bytes=size)))
        sent = credited = 0
        response = None
        credits = 0
        while response is None:
            while sent < size and sent - credited < window:
                piece = block[:min(window - (sent - credited), size - sent, len(block))]
                worker.send(p.BODY, p.FLAG_END if sent + len(piece) == size else 0, 1, piece)
                digest.update(piece)
                sent += len(piece)
            frame_type, _, request_id, payload = worker.read_frame()
            self.assertEqual(request_id, 1)
            if frame_type == p.CREDIT:
                credited += p.decode_u32(payload)
                credits += 1
                self.assertLessEqual(credited, sent)
            else:
                self.assertEqual(frame_type, p.RESPONSE, payload)
                response = json.loads(p.split_response(payload)[1])
        self.assertEqual(response, {'bytes': size, 'sha256': digest.hexdigest()})
        self.assertGreater(credits, size // window)

    def body_file(self, data):
        """An unlinked temp file holding ``data``, open in this process (the fake front) -> fd."""
        fd, path = tempfile.mkstemp(prefix='w2n-body-test-')
        os.unlink(path)
        self.addCleanup(os.close, fd)
        os.write(fd, data)
        return fd

    def offer_body_file(self, worker, request_id, fd, size, dev=None, ino=None, named_fd=None):
        """REQUEST (no END) then BODY_FILE for ``fd`` of this process (or the descriptor number
        ``named_fd`` with fd's identity) -> the worker's FILE_OPENED byte."""
        info = os.fstat(fd)
        worker.send(p.REQUEST, 0, request_id, encode_pairs(environ_pairs(method='POST', body_bytes=size)))
        worker.send(p.BODY_FILE, 0, request_id, p._BODY_FILE.pack(
            os.getpid(), fd if named_fd is None else named_fd, size,
            info.st_dev if dev is None else dev, info.st_ino if ino is None else ino))
        frame_type, flags, frame_id, payload = worker.read_frame()
        self.assertEqual((frame_type, flags, frame_id), (p.FILE_OPENED, 0, request_id))
        return payload

    def test_body_file_is_read_by_the_worker_without_frames_or_credit(self):
        worker = self.start('upload:app')
        data = os.urandom(3 * 1024 * 1024 + 5)
        fd = self.body_file(data)
        self.assertEqual(self.offer_body_file(worker, 1, fd, len(data)), b'\x01')
        # No CREDIT: nothing came as frames (collect() fails on any frame but the answer).
        response = worker.collect(1)
        self.assertEqual(json.loads(response.body), {'bytes': len(data), 'sha256': hashlib.sha256(data).hexdigest()})
        # The worker closed its descriptor once the request was done.
        self.assertEqual(descriptors_left(worker.proc.pid, '/w2n-body-test-'), [])
        # A late BODY_FILE (the request is over) is dropped, as other late frames are.
        worker.send(p.BODY_FILE, 0, 1, p._BODY_FILE.pack(os.getpid(), fd, 1, 0, 0))
        self.assertEqual(worker.request(2, body=b'abc').body, b'{"bytes": 3, "sha256": "%s"}' % hashlib.sha256(b'abc').hexdigest().encode())

    def test_body_file_that_cannot_be_opened_or_is_not_that_file_comes_as_body_frames(self):
        worker = self.start('upload:app')
        data = os.urandom(100000)
        fd = self.body_file(data)
        info = os.fstat(fd)
        cases = [('another inode', dict(ino=info.st_ino + 1)), ('another device', dict(dev=info.st_dev + 1)),
                 ('longer than the file', dict(size=len(data) + 1)), ('no such descriptor', dict(named_fd=999999))]
        for request_id, (name, change) in enumerate(cases, 1):
            with self.subTest(case=name):
                size = change.pop('size', len(data))
                answer = self.offer_body_file(worker, request_id, fd, size, **change)
                self.assertEqual(answer, b'\x00')
                body = (data + b'!')[:size]
                for offset in range(0, size, 65536):
                    worker.send(p.BODY, 0, request_id, body[offset:offset + 65536])
                worker.send(p.BODY, p.FLAG_END, request_id)
                response = worker.collect(request_id)
                self.assertEqual(json.loads(response.body)['sha256'], hashlib.sha256(body).hexdigest())

    def test_body_file_payload_that_breaks_the_layout_is_a_protocol_error(self):
        worker = self.start('upload:app')
        worker.send(p.REQUEST, 0, 1, encode_pairs(environ_pairs(method='POST', body_bytes=3)))
        worker.send(p.BODY_FILE, 0, 1, b'\x00' * 31)
        frame_type, _, frame_id, payload = worker.read_frame()
        self.assertEqual((frame_type, frame_id), (p.ERROR, 0))
        self.assertEqual(json.loads(payload)['code'], p.ERR_PROTO_UNEXPECTED)

    def test_large_download_stops_at_the_response_window(self):
        window = 256 * 1024
        worker = self.start('stream:app', response_window=window)
        size = 4 * 1024 * 1024 + 7
        worker.start_request(1, query='n=%d' % size)
        received = 0
        while received < window:
            frame_type, flags, _, payload = worker.read_frame()
            received += len(p.split_response(payload)[1]) if frame_type == p.RESPONSE else len(payload)
        self.assertEqual(received, window)
        worker.sock.settimeout(0.3)
        with self.assertRaises(socket.timeout):
            worker.read_frame()  # the window is shut: nothing more comes
        worker.sock.settimeout(20)
        credit(worker, 1, received)
        rest = worker.collect(1)
        self.assertEqual(received + len(rest.body), size)

    def test_download_content(self):
        worker = self.start('stream:app')
        response = worker.request(1, query='n=1000000&cl=1')
        block = bytes(range(256)) * 256
        self.assertEqual(response.header('Content-Length'), '1000000')
        self.assertEqual(response.body, (block * 16)[:1000000])
        self.assertTrue(all(len(frame[3]) <= p.MAX_CHUNK + 4096 for frame in response.frames))

    def test_base_exceptions_and_huge_messages_are_error_frames_and_the_worker_carries_on(self):
        # Issue 11: a BaseException that is not an Exception (the app's own, KeyboardInterrupt,
        # SystemExit) sent no ERROR: the request waited for --timeout. A 16 MiB message made an
        # ERROR frame too large to send. Each is now a 500 for its request alone.
        worker = self.start('hostile:app')
        expected = {'base': 'Custom: a BaseException subclass', 'interrupt': 'KeyboardInterrupt',
                    'exit': 'SystemExit: 3'}
        for request_id, (kind, message) in enumerate(sorted(expected.items()), 1):
            with self.subTest(kind=kind):
                response = worker.request(request_id, path='/raise', query='kind=' + kind)
                self.assertIsNotNone(response.error, 'no ERROR for %s' % kind)
                self.assertEqual(response.error['code'], p.ERR_APP_EXCEPTION)
                self.assertEqual(response.error['message'].split('.')[-1], message)
        response = worker.request(10, path='/raise', query='kind=huge')
        self.assertEqual(response.error['code'], p.ERR_APP_EXCEPTION)
        self.assertTrue(response.error['message'].startswith('ValueError: mmm'))
        self.assertLess(len(response.error['message']), 8 * 1024)
        self.assertLessEqual(len(response.error['traceback']), 1024 * 1024)
        self.assertTrue(worker.request(11).body.startswith(b'alive '), 'the same worker serves on')

    def test_exception_is_an_error_frame_and_the_worker_carries_on(self):
        worker = self.start('boom:app')
        response = worker.request(1)
        self.assertEqual(response.error['code'], p.ERR_APP_EXCEPTION)
        self.assertEqual(response.error['message'], 'ZeroDivisionError: integer division or modulo by zero')
        self.assertIn('boom.py', response.error['traceback'])
        self.assertEqual(worker.request(2).error['code'], p.ERR_APP_EXCEPTION)

    def test_bad_responses(self):
        worker = self.start('badheaders:app')
        for request_id, kind in enumerate(('crlf', 'status', 'twice', 'hop', 'bytes'), 1):
            with self.subTest(kind=kind):
                response = worker.request(request_id, query='kind=' + kind)
                self.assertEqual(response.error['code'], p.ERR_APP_BAD_RESPONSE)
        self.assertEqual(worker.request(99).body, b'ok')

    def test_write_callable(self):
        worker = self.start('writer:app')
        self.assertEqual(worker.request(1).body, b'Hello, writer!')

    def test_cancel_while_the_app_reads_the_body(self):
        worker = self.start('upload:app', threads=1)
        worker.send(p.REQUEST, 0, 1, encode_pairs(environ_pairs(method='POST', body_bytes=10)))
        worker.send(p.BODY, 0, 1, b'12345')
        time.sleep(0.1)
        worker.send(p.CANCEL, 0, 1)
        # Its last word frees its slot in the front: the front counts it until then (-w).
        last = worker.collect(1, on_frame=lambda frame: frame[0] == p.CREDIT)
        self.assertEqual(last.error['code'], p.ERR_REQUEST_CANCELLED)
        worker.start_request(2, body=b'abc')
        response = worker.collect(2)
        self.assertEqual(json.loads(response.body)['bytes'], 3)

    def test_cancel_while_the_response_waits_for_credit(self):
        worker = self.start('stream:app', threads=1, response_window=64 * 1024)
        worker.start_request(1, query='n=10000000')
        frame_type, _, _, _ = worker.read_frame()
        self.assertEqual(frame_type, p.RESPONSE)
        worker.send(p.CANCEL, 0, 1)
        # The one thread is free again: the next request is answered.
        worker.start_request(2, query='n=5')
        response = worker.collect(2, on_frame=lambda frame: frame[2] == 1)
        self.assertEqual(len(response.body), 5)

    def test_late_frames_for_finished_requests_are_ignored(self):
        worker = self.start()
        worker.request(1)
        credit(worker, 1, 100)
        worker.send(p.CANCEL, 0, 1)
        worker.send(p.BODY, p.FLAG_END, 1, b'late')
        self.assertEqual(worker.request(2).body, b'Hello, World!')

    def test_ping(self):
        worker = self.start()
        worker.send(p.PING, 0, 0, b'\x00abc')
        self.assertEqual(worker.read_frame(), (p.PONG, 0, 0, b'\x00abc'))

    def test_shutdown_drains_then_exits_0(self):
        worker = self.start('slow:app')
        worker.start_request(1, query='s=0.3')
        time.sleep(0.05)
        worker.shutdown()
        worker.start_request(2, query='s=0')
        frames = {}
        while True:
            frame = worker.read_frame()
            if frame is None:
                break
            frames[frame[2]] = frame
        self.assertEqual(frames[1][:2], (p.RESPONSE, p.FLAG_END))
        self.assertEqual(frames[2][0], p.ERROR)
        self.assertEqual(json.loads(frames[2][3])['code'], p.ERR_NOT_READY)
        self.assertEqual(worker.wait(), 0)

    def test_shutdown_when_idle(self):
        worker = self.start()
        worker.shutdown()
        self.assertIsNone(worker.read_frame())
        self.assertEqual(worker.wait(), 0)

    def test_eof_exits_at_once(self):
        worker = self.start('slow:app')
        worker.start_request(1, query='s=30')
        time.sleep(0.1)
        started = time.monotonic()
        worker.sock.shutdown(socket.SHUT_RDWR)
        worker.sock.close()
        self.assertEqual(worker.wait(), 0)
        self.assertLess(time.monotonic() - started, 5)

    def test_file_wrapper_hands_the_descriptor_over(self):
        worker = self.start('filewrap:app')
        with tempfile.NamedTemporaryFile() as stream:
            stream.write(os.urandom(100000))
            stream.flush()
            worker.start_request(1, query='path=%s&offset=100' % stream.name)
            response = worker.collect(1)
            self.assertEqual(response.header('Content-Length'), '99900')
            fd, offset, length = response.sendfile
            self.assertEqual((offset, length), (100, 99900))
            with open('/proc/%d/fd/%d' % (worker.proc.pid, fd), 'rb') as handed, open(stream.name, 'rb') as original:
                handed.seek(offset)
                self.assertEqual(handed.read(length), original.read()[100:])
            worker.send(p.FILE_OPENED, 0, 1, b'\x01')
        self.assertEqual(worker.request(2, query='path=/nonexistent').status_code, 404)

    def test_protocol_error_sends_error_0_and_exits_4(self):
        worker = self.start()
        worker.sock.sendall(bytes.fromhex('7f 00 0000 00000001 00000000'))  # unknown type 0x7f
        frame = worker.read_frame()
        self.assertEqual(frame[:3], (p.ERROR, 0, 0))
        self.assertEqual(json.loads(frame[3])['code'], p.ERR_PROTO_UNKNOWN_TYPE)
        self.assertEqual(worker.wait(), 4)

    def test_unexpected_frame_is_a_protocol_error(self):
        worker = self.start()
        worker.send(p.RESPONSE, 0, 5, b'\0\0\0\0')
        frame = worker.read_frame()
        self.assertEqual(json.loads(frame[3])['code'], p.ERR_PROTO_UNEXPECTED)
        self.assertEqual(worker.wait(), 4)

    def test_web2py_folder(self):
        worker = self.start({'kind': 'web2py', 'folder': FIXTURE_WEB2PY})
        data = json.loads(worker.request(1, path='/env').body)
        self.assertEqual(data['cwd'], FIXTURE_WEB2PY)
        self.assertEqual(data['sys_path_0'], FIXTURE_WEB2PY)
        self.assertNotIn(os.path.dirname(LAUNCHER), data['sys_path'])
        self.assertTrue(data['web2py_runtime_handler'])
        self.assertTrue(data['is_local'])
        self.assertFalse(data['is_https'])
        data = json.loads(worker.request(2, path='/env', remote_addr='10.1.2.3', scheme='https').body)
        self.assertFalse(data['is_local'])
        self.assertTrue(data['is_https'])
        response = worker.request(3, path='/welcome/default/index')
        self.assertIn(b'Hello from welcome', response.body)

    def test_profiler_writes_one_file_per_request(self):
        folder = tempfile.mkdtemp()
        worker = self.start(profiler_dir=folder)
        worker.request(1)
        worker.request(2)
        worker.shutdown()  # the files are written before the requests count as done
        self.assertEqual(worker.wait(), 0)
        files = glob.glob(os.path.join(folder, 'req_*.prof'))
        self.assertEqual(len(files), 2)
        # As gluon/main.py appfactory names them: "req_%s.prof" % web2py_uuid(), a str(UUID4) with dashes.
        self.assertRegex(os.path.basename(files[0]),
                         r'^req_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.prof$')
        pstats.Stats(files[0])
        for path in files:
            os.unlink(path)
        os.rmdir(folder)

    def test_worker_dies_with_the_app(self):
        worker = self.start('crash:app')
        self.assertTrue(worker.request(1, path='/').body.startswith(b'alive'))
        worker.start_request(2, path='/exit')
        self.assertIsNone(worker.read_frame())
        self.assertEqual(worker.wait(), 1)


    def test_str_body_is_encoded_and_warned_once_per_path(self):
        """Issue 14: web2py's HTTP(200, T('...')) yields str; it was a 500 (W2N_ERR_APP_BAD_RESPONSE)."""
        worker = self.start('text:app')
        answers = [
            worker.request(1, path='/admin/default/index'),
            worker.request(2, path='/admin/default/index', query='text=caf%C3%A9&charset=latin-1'),
            worker.request(3, path='/other', query='text=%E2%82%AC&kind=list'),
        ]
        self.assertEqual([answer.status for answer in answers], ['200 OK'] * 3, [a.error for a in answers])
        self.assertEqual([answer.body for answer in answers],
                         [b'Admin is disabled because insecure channel', b'caf\xe9', '\u20ac'.encode()])
        worker.shutdown()
        self.assertEqual(worker.wait(), 0)  # and every stderr line has been read
        warnings = [json.loads(line.split(' ', 2)[2]) for line in worker.output['stderr']
                    if line.startswith('w2n-event app.str_body ')]
        self.assertEqual([(warning['path'], warning['charset']) for warning in warnings],
                         [('/admin/default/index', 'utf-8'), ('/other', 'utf-8')])

    def test_a_traceback_is_not_written_to_stderr_when_the_front_gets_it(self):
        """Issue 14: it was logged twice, as worker output and in request.failed."""
        worker = self.start('boom:app')
        response = worker.request(1)
        self.assertEqual(response.error['code'], p.ERR_APP_EXCEPTION)
        self.assertIn('ZeroDivisionError', response.error['traceback'])
        worker.shutdown()
        self.assertEqual(worker.wait(), 0)
        self.assertNotIn('ZeroDivisionError', worker.stderr)


class PoolContract:
    """Thread and gevent: request threads start on demand, up to --threads, and stay.

    SPARE_RUNNERS: runners beyond --threads the class may start (the thread class's reader runs
    requests too, so it has one more thread than requests it runs at once).
    """

    SPARE_RUNNERS = 0

    def pool(self, worker, request_id):
        """-> (runners started, requests in the application at once)"""
        started, at_once = worker.request(request_id).body.split()
        return int(started), int(at_once)

    def test_request_threads_start_on_demand_and_stay(self):
        worker = self.start('pool:app', threads=50)
        self.assertEqual(self.pool(worker, 1)[0], 1, 'a fresh worker starts one for its first request')
        for request_id in range(2, 7):
            worker.start_request(request_id, query='s=0.5')
        time.sleep(0.1)  # all five are asleep in the application
        started, at_once = self.pool(worker, 7)
        self.assertEqual(at_once, 6, 'five sleeping and this one')
        self.assertGreaterEqual(started, 6, 'five sleeping and this one')
        self.assertLessEqual(started, 6 + self.SPARE_RUNNERS, 'five sleeping and this one')
        for _ in range(5):
            self.assertEqual(worker.read_frame()[0], p.RESPONSE)
        self.assertEqual(self.pool(worker, 8), (started, 1), 'idle ones are reused, not replaced')

    def test_request_threads_never_exceed_threads(self):
        worker = self.start('pool:app', threads=3)
        for request_id in range(1, 6):
            worker.start_request(request_id, query='s=0.3')
        started = []
        at_once = []
        for _ in range(5):
            frame_type, _flags, _id, payload = worker.read_frame()
            self.assertEqual(frame_type, p.RESPONSE)
            counts = p.split_response(payload)[1].split()
            started.append(int(counts[0]))
            at_once.append(int(counts[1]))
        self.assertEqual(max(at_once), 3, 'five requests, three at once')
        self.assertLessEqual(max(started), 3 + self.SPARE_RUNNERS, 'five requests, three request threads')


class ThreadWorkerTest(PoolContract, WorkerContract, unittest.TestCase):
    WORKER_CLASS = 'thread'
    SPARE_RUNNERS = 1

    def test_requests_run_concurrently(self):
        worker = self.start('slow:app', threads=4)
        started = time.monotonic()
        for request_id in range(1, 5):
            worker.start_request(request_id, query='s=0.5')
        for _ in range(4):
            self.assertEqual(worker.read_frame()[0], p.RESPONSE)
        self.assertLess(time.monotonic() - started, 1.5)  # one after the other would take 2 s

    def test_a_computing_request_hands_reading_over(self):
        """A request still running at two of the watcher's looks hands reading over, computing or
        not: /busy computes until /quick has run, so only a hand-over lets both answer."""
        worker = self.start('neighbours:app', threads=4)
        worker.start_request(1, path='/busy')
        worker.start_request(2, path='/quick')
        self.assertEqual(worker.collect(2).body, b'quick', 'the neighbour answers while /busy computes')
        self.assertEqual(worker.collect(1).body, b'the neighbour ran')

    def test_a_waiting_request_hands_reading_over(self):
        """A request that waits (here in sleeps) frees the reader: /wait sleeps until /quick has
        run, which comes after it (in its batch or the next: either way only a hand-over starts it)."""
        worker = self.start('neighbours:app', threads=4)
        worker.start_request(1, path='/wait')
        worker.start_request(2, path='/quick')
        self.assertEqual(worker.collect(2).body, b'quick', 'the neighbour answers while /wait waits')
        self.assertEqual(worker.collect(1).body, b'the neighbour ran')


class SyncWorkerTest(WorkerContract, unittest.TestCase):
    WORKER_CLASS = 'sync'
    THREADS = 1


@unittest.skipUnless(HAS_GEVENT, 'gevent is not installed for %s' % sys.executable)
class GeventWorkerTest(PoolContract, WorkerContract, unittest.TestCase):
    WORKER_CLASS = 'gevent'

    def test_requests_run_concurrently(self):
        ThreadWorkerTest.test_requests_run_concurrently(self)


class SendBufferTest(unittest.TestCase):
    """The channel's send buffer holds a response window (channel.enlarge_send_buffer)."""

    def socket(self):
        sock, peer = socket.socketpair()
        self.addCleanup(sock.close)
        self.addCleanup(peer.close)
        return sock

    def test_it_is_the_window_up_to_the_cap(self):
        from web2py_on_node_worker.channel import MAX_SEND_BUFFER, enlarge_send_buffer
        try:
            with open('/proc/sys/net/core/wmem_max') as f:
                kernel_max = int(f.read())
        except OSError:
            self.skipTest('no /proc/sys/net/core/wmem_max')
        for window in (256 * 1024, 16 * 1024 * 1024):
            sock = self.socket()
            enlarge_send_buffer(sock, window)
            # Linux doubles what it is asked for (its bookkeeping), after capping it at wmem_max.
            self.assertEqual(sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF),
                             2 * min(window, MAX_SEND_BUFFER, kernel_max))


class StartFailureTest(unittest.TestCase):

    def start_failing(self, app, **options):
        worker = WorkerProcess(app, **options)
        self.addCleanup(worker.close)
        frame = worker.read_frame()
        self.assertIsNotNone(frame, worker.stderr)
        self.assertEqual(frame[:3], (p.ERROR, 0, 0))
        return worker, json.loads(frame[3])

    def test_import_error(self):
        worker, error = self.start_failing(wsgi_app('no_such_module:app'))
        self.assertEqual(error['code'], p.ERR_APP_IMPORT)
        self.assertEqual(error['message'], "ModuleNotFoundError: No module named 'no_such_module'")
        self.assertIn('Traceback', error['traceback'])
        self.assertEqual(worker.wait(), 3)

    def test_missing_callable(self):
        worker, error = self.start_failing(wsgi_app('hello:nothing'))
        self.assertEqual(error['message'], "module hello has no 'nothing'")
        self.assertEqual(worker.wait(), 3)

    def test_default_callable_names(self):
        worker = WorkerProcess(wsgi_app('hello'))
        self.addCleanup(worker.close)
        worker.wait_ready()
        self.assertEqual(worker.request(1).body, b'Hello, World!')

    def test_folder_without_gluon(self):
        folder = tempfile.mkdtemp()
        self.addCleanup(os.rmdir, folder)
        worker, error = self.start_failing({'kind': 'web2py', 'folder': folder})
        self.assertIn('not a web2py folder', error['message'])
        self.assertEqual(worker.wait(), 3)

    def test_web2py_import_error_names_the_submodules(self):
        folder = tempfile.mkdtemp()
        os.makedirs(os.path.join(folder, 'gluon'))
        for name, text in (('__init__.py', ''), ('settings.py', 'class S: pass\nglobal_settings = S()\n'),
                           ('main.py', 'import pydal\n')):
            with open(os.path.join(folder, 'gluon', name), 'w') as stream:
                stream.write(text)
        worker, error = self.start_failing({'kind': 'web2py', 'folder': folder})
        self.assertIn("No module named 'pydal'", error['message'])
        self.assertIn('git submodule update --init --recursive', error['message'])
        self.assertEqual(worker.wait(), 3)
        subprocess.call(['rm', '-rf', folder])

    def test_demo_app(self):
        worker = WorkerProcess({'kind': 'demo'})
        self.addCleanup(worker.close)
        worker.wait_ready()
        page = worker.request(1, path='/').body
        self.assertIn(b'web2py-on-node is running', page)
        self.assertIn(str(worker.proc.pid).encode(), page)
        self.assertEqual(json.loads(worker.request(2, path='/demo/echo').body)['PATH_INFO'], '/demo/echo')

    def test_protocol_version_mismatch(self):
        worker, error = self.start_failing(wsgi_app('hello:app'), handshake={'protocol': 99})
        self.assertEqual(error['code'], p.ERR_PROTO_VERSION)
        self.assertEqual(worker.wait(), 4)

    def test_an_unknown_handshake_key_refuses_the_start(self):
        """Issue 16: a key renamed on one side once fell back to a default in the worker."""
        worker, error = self.start_failing(wsgi_app('hello:app'), handshake={'threadCount': 8})
        self.assertEqual(error['code'], p.ERR_PROTO_UNEXPECTED)
        self.assertEqual(error['message'].count('\n'), 0)
        self.assertIn('unknown keys threadCount', error['message'])
        self.assertEqual(worker.wait(), 4)

    def test_a_missing_handshake_key_refuses_the_start(self):
        worker = WorkerProcess(wsgi_app('hello:app'), send_handshake=False)
        self.addCleanup(worker.close)
        handshake = dict(worker.handshake)
        del handshake['workerClass']
        worker.send(p.HANDSHAKE, 0, 0, json.dumps(handshake).encode())
        frame = worker.read_frame()
        self.assertEqual(frame[:3], (p.ERROR, 0, 0))
        error = json.loads(frame[3])
        self.assertEqual(error['code'], p.ERR_PROTO_UNEXPECTED)
        self.assertIn('lacks keys workerClass', error['message'])
        self.assertEqual(worker.wait(), 4)

    def test_first_frame_must_be_handshake(self):
        worker = WorkerProcess(wsgi_app('hello:app'), send_handshake=False)
        self.addCleanup(worker.close)
        worker.send(p.PING, 0, 0, b'')
        frame = worker.read_frame()
        self.assertEqual(json.loads(frame[3])['code'], p.ERR_PROTO_UNEXPECTED)
        self.assertEqual(worker.wait(), 4)

    def test_eof_before_handshake(self):
        worker = WorkerProcess(wsgi_app('hello:app'), send_handshake=False)
        self.addCleanup(worker.close)
        worker.sock.close()
        self.assertEqual(worker.wait(), 0)

    def test_unknown_worker_class(self):
        worker, error = self.start_failing(wsgi_app('hello:app'), worker_class='fork')
        self.assertEqual(error['code'], p.ERR_APP_IMPORT)
        self.assertIn("unknown worker class 'fork'", error['message'])
        self.assertEqual(worker.wait(), 3)

    @unittest.skipIf(HAS_GEVENT, 'gevent is installed for %s' % sys.executable)
    def test_gevent_missing(self):
        worker, error = self.start_failing(wsgi_app('hello:app'), worker_class='gevent')
        self.assertEqual(error['code'], p.ERR_APP_IMPORT)
        self.assertIn("worker class 'gevent' needs the gevent package", error['message'])
        self.assertEqual(worker.wait(), 3)

    def test_module_entry_point(self):
        """``python -m web2py_on_node_worker`` is the same worker (for debugging)."""
        front, worker_end = socket.socketpair()
        child_fd = worker_end.fileno()
        proc = subprocess.Popen([sys.executable, '-m', 'web2py_on_node_worker'], cwd=os.path.join(REPO, 'python'),
                                pass_fds=[3], preexec_fn=lambda: os.dup2(child_fd, 3),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        worker_end.close()
        front.close()
        self.assertEqual(proc.wait(20), 0)


if __name__ == '__main__':
    unittest.main()
