"""workers/ggevent.py BatchedSender (the gevent class's channel sender): frames sent in one turn of the hub leave in one system call, in
order; a sender past MAX_QUEUED_BYTES waits; a failed write closes it.

Runs in this process without monkey-patching: BatchedSender only needs gevent's events and a
socket whose sendmsg it can call (a counting wrapper around one end of a socketpair).
"""

import importlib.util
import socket
import unittest

import worker_harness  # noqa: F401 - puts python/ on sys.path

HAS_GEVENT = importlib.util.find_spec('gevent') is not None


class CountingSocket:
    """One end of a socketpair that counts sendmsg calls, or fails them when told to."""

    def __init__(self, sock):
        self._sock = sock
        self.sendmsg_calls = 0
        self.failure = None

    def sendmsg(self, pieces):
        self.sendmsg_calls += 1
        if self.failure is not None:
            raise self.failure
        return self._sock.sendmsg(pieces)

    def sendall(self, data):
        self._sock.sendall(data)


def read_exactly(sock, size):
    chunks = []
    while size > 0:
        chunk = sock.recv(size)
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    return b''.join(chunks)


@unittest.skipUnless(HAS_GEVENT, 'gevent is not installed for this Python')
class BatchedSenderTest(unittest.TestCase):
    def setUp(self):
        self.ours, self.theirs = socket.socketpair()
        self.addCleanup(self.ours.close)
        self.addCleanup(self.theirs.close)
        self.counting = CountingSocket(self.ours)

    def test_frames_of_one_turn_leave_in_one_sendmsg_in_order(self):
        import gevent
        from web2py_on_node_worker.workers.ggevent import BatchedSender
        sender = BatchedSender(self.counting)
        frames = [b'frame-%03d;' % number for number in range(50)]
        # 50 greenlets that all run in the same turn, each sending one frame (the second one as parts).
        greenlets = [gevent.spawn(sender.send, frame) for frame in frames[:25]]
        greenlets += [gevent.spawn(sender.send_parts, [frame[:3], frame[3:]]) for frame in frames[25:]]
        gevent.joinall(greenlets, raise_error=True)
        sender.flush(5)
        expected = b''.join(frames)
        self.assertEqual(read_exactly(self.theirs, len(expected)), expected)
        self.assertEqual(self.counting.sendmsg_calls, 1)

    def test_a_sender_past_the_limit_waits_until_the_queue_is_written(self):
        import gevent
        from web2py_on_node_worker.workers import ggevent as gevent_sender
        sender = gevent_sender.BatchedSender(self.counting)
        big = b'x' * gevent_sender.MAX_QUEUED_BYTES
        sender.send(big)  # fills the queue: the next send must wait for the sender greenlet
        waited = []
        second = gevent.spawn(lambda: (sender.send(b'after'), waited.append(self.counting.sendmsg_calls)))
        reader = gevent.get_hub().threadpool.spawn(read_exactly, self.theirs, len(big) + 5)
        second.join(5)
        sender.flush(5)
        self.assertEqual(waited, [1], 'the second send went on only after the first write')
        self.assertEqual(reader.get(timeout=5), big + b'after')

    def test_a_failed_write_closes_the_sender(self):
        from web2py_on_node_worker.workers.ggevent import BatchedSender
        self.counting.failure = BrokenPipeError(32, 'Broken pipe')
        sender = BatchedSender(self.counting)
        sender.send(b'lost')
        sender.flush(5)  # returns: the failed write counts as done
        with self.assertRaises(OSError):
            sender.send(b'after the failure')


if __name__ == '__main__':
    unittest.main()
