"""Deadlines (CANCEL with FLAG_TIMEOUT), SIGUSR2 stack dumps, and web2py's session flock under
gevent: the worker as a process, driven over its fd-3 socket like the Node front drives it."""

import importlib.util
import json
import os
import signal
import sys
import tempfile
import time
import unittest

from worker_harness import FIXTURE_APPS, WorkerProcess, wsgi_app
from web2py_on_node_worker import protocol as p

HAS_GEVENT = importlib.util.find_spec('gevent') is not None
SPIN_FILE = os.path.join(FIXTURE_APPS, 'spin.py')


def spin_loop_line():
    with open(SPIN_FILE) as stream:
        for number, line in enumerate(stream, 1):
            if 'SPIN-LOOP' in line:
                return number
    raise AssertionError('no SPIN-LOOP line in spin.py')


class DeadlineContract:
    """Subclasses set WORKER_CLASS, and CAN_STOP_LOOPS / CAN_STOP_SLEEPS for what it can stop."""

    WORKER_CLASS = None
    CAN_STOP_LOOPS = True
    CAN_STOP_SLEEPS = True

    def start(self, app='spin:app', threads=1):
        worker = WorkerProcess(wsgi_app(app), worker_class=self.WORKER_CLASS, threads=threads)
        self.addCleanup(worker.close)
        self.addCleanup(lambda: worker.proc.poll() is None and worker.proc.kill())
        worker.wait_ready()
        return worker

    def time_out(self, worker, request_id):
        """What the front does at the deadline: CANCEL with FLAG_TIMEOUT."""
        worker.send(p.CANCEL, p.FLAG_TIMEOUT, request_id)

    def last_word(self, worker, request_id, within_s):
        """The worker's last frame for a timed-out request: an ERROR W2N_ERR_WORKER_TIMEOUT."""
        worker.sock.settimeout(within_s)
        try:
            response = worker.collect(request_id)
        finally:
            worker.sock.settimeout(20)
        self.assertIsNotNone(response.error, 'expected ERROR, got %s' % response.status)
        self.assertEqual(response.error['code'], p.ERR_WORKER_TIMEOUT)
        return response

    def events(self, worker, request_id, tag):
        data = json.loads(worker.request(request_id, path='/status').body)
        return [what for event_tag, what in data['events'] if event_tag == tag]

    def stop_one(self, query, within_s=3):
        worker = self.start()
        worker.start_request(1, query=query + '&tag=a')
        time.sleep(0.3)
        started = time.monotonic()
        self.time_out(worker, 1)
        response = self.last_word(worker, 1, within_s)
        elapsed = time.monotonic() - started
        # One thread: this answer proves the stuck request's slot is free again.
        return worker, response, elapsed, self.events(worker, 2, 'a')

    def test_a_python_loop_is_stopped_and_the_slot_freed(self):
        if not self.CAN_STOP_LOOPS:
            self.skipTest('a %s worker cannot stop a loop that never yields' % self.WORKER_CLASS)
        worker, response, elapsed, events = self.stop_one('kind=loop')
        self.assertEqual(events, ['started', 'RequestTimeout'])
        self.assertLess(elapsed, 1)
        self.assertIn('RequestTimeout', response.error['traceback'])
        self.assertIn('spin.py', response.error['traceback'])
        deadline = time.monotonic() + 5  # stderr is relayed by a thread of the harness
        while 'request 1 ended after its deadline' not in worker.stderr and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertIn('request 1 ended after its deadline (RequestTimeout raised)', worker.stderr)

    def test_a_sleep_is_stopped(self):
        if not self.CAN_STOP_SLEEPS:
            _, _, elapsed, events = self.stop_one('kind=sleep&s=1.5')
            # A real thread gets it when time.sleep returns.
            self.assertEqual(events, ['started', 'RequestTimeout'])
            self.assertGreater(elapsed, 0.8)
            return
        _, _, elapsed, events = self.stop_one('kind=sleep')
        self.assertEqual(events, ['started', 'RequestTimeout'])
        self.assertLess(elapsed, 1)

    def test_the_response_iterable_is_closed(self):
        kind = 'loop' if self.CAN_STOP_LOOPS else 'sleep'
        _, _, _, events = self.stop_one('kind=%s&s=1&where=iter' % kind)
        self.assertEqual(events, ['started', 'RequestTimeout', 'closed'])

    def test_an_app_that_swallows_the_first_interrupt_gets_another(self):
        if not self.CAN_STOP_LOOPS:
            self.skipTest('a %s worker cannot stop a loop that never yields' % self.WORKER_CLASS)
        _, _, elapsed, events = self.stop_one('kind=swallow', within_s=5)
        self.assertEqual(events, ['started', 'swallowed', 'RequestTimeout'])
        self.assertLess(elapsed, 3)

    def test_a_request_whose_deadline_passed_in_the_queue_never_runs(self):
        worker = self.start()
        worker.start_request(1, query='kind=sleep&s=0.5&tag=a')
        worker.start_request(2, query='kind=sleep&s=0.5&tag=b')
        time.sleep(0.1)
        self.time_out(worker, 2)
        # Its slot is freed (and the front told) when its turn comes, without running it.
        self.assertEqual(worker.collect(1).body, b'done')
        self.last_word(worker, 2, 3)
        self.assertEqual(self.events(worker, 3, 'b'), [])

    def test_a_cancelled_request_is_stopped_and_says_so(self):
        # Issue 11: a plain CANCEL (the client left) used to leave the app running while the
        # front had freed its slot; now it is stopped like a deadline, and its last word (the
        # front frees the slot on it) is ERROR W2N_ERR_REQUEST_CANCELLED.
        worker = self.start()
        kind = 'loop' if self.CAN_STOP_LOOPS else 'sleep&s=1'
        worker.start_request(1, query='kind=%s&tag=a' % kind)
        time.sleep(0.3)
        worker.send(p.CANCEL, 0, 1)
        worker.sock.settimeout(3)
        response = worker.collect(1)
        worker.sock.settimeout(20)
        self.assertEqual(response.error['code'], p.ERR_REQUEST_CANCELLED)
        self.assertEqual(self.events(worker, 2, 'a'), ['started', 'RequestCancelled'])

    def test_sigusr2_dumps_the_stacks_and_the_worker_carries_on(self):
        worker = self.start(threads=2)
        worker.start_request(1, query='kind=loop' if self.CAN_STOP_LOOPS else 'kind=sleep')
        time.sleep(0.3)
        os.kill(worker.proc.pid, signal.SIGUSR2)
        expected = 'File "%s", line %d' % (SPIN_FILE, spin_loop_line()) if self.CAN_STOP_LOOPS else SPIN_FILE
        deadline = time.monotonic() + 5
        while expected not in worker.stderr and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn(expected, worker.stderr)
        self.assertIsNone(worker.proc.poll())
        self.time_out(worker, 1)
        self.last_word(worker, 1, 3)


class ThreadDeadlineTest(DeadlineContract, unittest.TestCase):
    WORKER_CLASS = 'thread'
    CAN_STOP_SLEEPS = False  # an async exception waits for time.sleep to return

    def test_other_requests_are_served_meanwhile(self):
        worker = self.start(threads=2)
        worker.start_request(1, query='kind=loop&tag=a')
        time.sleep(0.2)
        self.assertEqual(self.events(worker, 2, 'a'), ['started'])
        self.time_out(worker, 1)
        self.last_word(worker, 1, 3)


class SyncDeadlineTest(DeadlineContract, unittest.TestCase):
    WORKER_CLASS = 'sync'


@unittest.skipUnless(HAS_GEVENT, 'gevent is not installed for %s' % sys.executable)
class GeventDeadlineTest(DeadlineContract, unittest.TestCase):
    WORKER_CLASS = 'gevent'
    CAN_STOP_LOOPS = False  # a greenlet that never yields keeps the hub from reading the CANCEL


@unittest.skipUnless(HAS_GEVENT, 'gevent is not installed for %s' % sys.executable)
class GeventSessionLockTest(unittest.TestCase):
    """web2py's session flock under gevent: serialized, and the hub keeps serving."""

    def test_locked_requests_serialize_while_others_are_served(self):
        handle, lock_file = tempfile.mkstemp(prefix='w2n-lock-')
        os.close(handle)
        self.addCleanup(os.unlink, lock_file)
        worker = WorkerProcess(wsgi_app('session_lock:app'), worker_class='gevent', threads=50)
        self.addCleanup(worker.close)
        worker.wait_ready()
        locks = range(1, 21)
        started = time.monotonic()
        for request_id in locks:
            worker.start_request(request_id, path='/lock', query='s=0.2&file=' + lock_file)
        pings = {}
        next_ping = started + 0.3
        answers = {}
        worker.sock.settimeout(0.05)
        while len(answers) < len(locks) + 3 and time.monotonic() - started < 20:
            if len(pings) < 3 and time.monotonic() >= next_ping:
                request_id = 100 + len(pings)
                pings[request_id] = time.monotonic()
                worker.start_request(request_id, path='/ping')
                next_ping += 0.5
            try:
                frame = worker.read_frame()
            except OSError:  # socket.timeout: time to send the next ping
                continue
            self.assertEqual(frame[0], p.RESPONSE, frame)
            answers[frame[2]] = (time.monotonic(), p.split_response(frame[3])[1])
        total = max(answers[request_id][0] for request_id in locks) - started
        self.assertGreaterEqual(total, 20 * 0.2 * 0.95)
        for request_id in locks:
            self.assertEqual(json.loads(answers[request_id][1]), {'max_inside': 1})
        for request_id, sent in pings.items():
            self.assertEqual(answers[request_id][1], b'pong')
            self.assertLess(answers[request_id][0] - sent, 0.25)
        self.assertEqual(len(pings), 3)


if __name__ == '__main__':
    unittest.main()
