"""environ['wsgi.websocket'] in the worker, driven over fd 3 by a fake front (worker_harness.py):
FLAG_UPGRADE, WS_ACCEPT on first use, messages and credit both ways, the client's close, the
last word (WS_CLOSE with END), a declined upgrade. One suite per worker class."""

import importlib.util
import sys
import unittest

from worker_harness import WorkerProcess, environ_pairs, encode_pairs, wsgi_app
from web2py_on_node_worker import protocol as p

HAS_GEVENT = importlib.util.find_spec('gevent') is not None
KEY = 'dGhlIHNhbXBsZSBub25jZQ=='


def upgrade_pairs(path, **headers):
    headers = dict({'Upgrade': 'websocket', 'Connection': 'Upgrade', 'Sec-WebSocket-Key': KEY,
                    'Sec-WebSocket-Version': '13'}, **headers)
    return encode_pairs(environ_pairs(path=path, headers=headers))


def u32(value):
    return p._U32.pack(value)


class WebSocketContract:
    WORKER_CLASS = None
    THREADS = 4

    def start(self, **options):
        options.setdefault('worker_class', self.WORKER_CLASS)
        options.setdefault('threads', self.THREADS)
        worker = WorkerProcess(wsgi_app('websockets:app'), **options)
        self.addCleanup(worker.close)
        worker.wait_ready()
        self.credits = 0
        return worker

    def next_frame(self, worker):
        """The next frame that is not a CREDIT (whose bytes are added up in self.credits)."""
        while True:
            frame = worker.read_frame()
            self.assertIsNotNone(frame, 'the worker closed the channel; stderr:\n' + worker.stderr)
            if frame[0] == p.CREDIT:
                self.credits += p.decode_u32(frame[3])
                continue
            return frame

    def test_echo_then_the_client_closes(self):
        worker = self.start()
        worker.send(p.REQUEST, p.FLAG_END | p.FLAG_UPGRADE, 1, upgrade_pairs('/echo'))
        self.assertEqual(self.next_frame(worker), (p.WS_ACCEPT, 0, 1, b''))
        worker.send(p.WS_MESSAGE, 0, 1, 'héllo'.encode())
        self.assertEqual(self.next_frame(worker), (p.WS_MESSAGE, 0, 1, 'héllo'.encode()))
        worker.send(p.WS_MESSAGE, p.FLAG_BINARY, 1, b'\x00\xff')
        self.assertEqual(self.next_frame(worker), (p.WS_MESSAGE, p.FLAG_BINARY, 1, b'\x00\xff'))
        worker.sock.sendall(p.encode_ws_close(0, 1, 1001, b'going'))
        # receive() gave None: the app returned, and its last word is WS_CLOSE with END.
        frame_type, flags, request_id, payload = self.next_frame(worker)
        self.assertEqual((frame_type, flags, request_id), (p.WS_CLOSE, p.FLAG_END, 1))
        self.assertEqual(p.decode_ws_close(payload), (1000, ''))
        # The app recorded the client's code.
        response = worker.request(2, path='/closes')
        self.assertEqual(response.body, b'[1001]')

    def test_app_close_and_subprotocol(self):
        worker = self.start()
        offered = upgrade_pairs('/proto', **{'Sec-WebSocket-Protocol': 'x, chat'})
        worker.send(p.REQUEST, p.FLAG_END | p.FLAG_UPGRADE, 1, offered)
        self.assertEqual(self.next_frame(worker), (p.WS_ACCEPT, 0, 1, b'chat'))
        self.assertEqual(self.next_frame(worker), (p.WS_MESSAGE, 0, 1, b'protocol=chat'))
        self.assertEqual(self.next_frame(worker)[:2], (p.WS_CLOSE, p.FLAG_END))
        worker.send(p.REQUEST, p.FLAG_END | p.FLAG_UPGRADE, 2, upgrade_pairs('/echo'))
        self.assertEqual(self.next_frame(worker)[0], p.WS_ACCEPT)
        worker.send(p.WS_MESSAGE, 0, 2, b'close-me')
        frame_type, flags, _, payload = self.next_frame(worker)
        self.assertEqual((frame_type, flags, p.decode_ws_close(payload)), (p.WS_CLOSE, 0, (4000, 'bye')))
        self.assertEqual(self.next_frame(worker)[:2], (p.WS_CLOSE, p.FLAG_END))

    def test_declined_or_plain_requests_are_http(self):
        worker = self.start()
        worker.send(p.REQUEST, p.FLAG_END | p.FLAG_UPGRADE, 1, upgrade_pairs('/decline'))
        response = worker.collect(1)
        self.assertEqual((response.status, response.body), ('403 Forbidden', b'no websocket for you'))
        # Without FLAG_UPGRADE the same headers give no wsgi.websocket.
        worker.send(p.REQUEST, p.FLAG_END, 2, upgrade_pairs('/echo'))
        self.assertEqual(worker.collect(2).status, '400 Bad Request')

    def test_raising_after_accept_is_an_error_frame(self):
        worker = self.start()
        worker.send(p.REQUEST, p.FLAG_END | p.FLAG_UPGRADE, 1, upgrade_pairs('/echo'))
        self.assertEqual(self.next_frame(worker)[0], p.WS_ACCEPT)
        worker.send(p.WS_MESSAGE, 0, 1, b'raise')
        frame_type, _, _, payload = self.next_frame(worker)
        self.assertEqual(frame_type, p.ERROR)
        self.assertIn('raised on request', payload.decode())

    def test_credit_both_ways(self):
        window = 1024
        worker = self.start(request_window=window, response_window=window)
        worker.send(p.REQUEST, p.FLAG_END | p.FLAG_UPGRADE, 1, upgrade_pairs('/echo'))
        self.assertEqual(self.next_frame(worker)[0], p.WS_ACCEPT)
        message = b'm' * 300
        for _ in range(5):
            worker.send(p.WS_MESSAGE, p.FLAG_BINARY, 1, message)
        # The worker may overrun its window by one message: 4 echoes (1,200 bytes) leave, the
        # fifth waits for the front's credit.
        for _ in range(4):
            self.assertEqual(self.next_frame(worker), (p.WS_MESSAGE, p.FLAG_BINARY, 1, message))
        worker.send(p.CREDIT, 0, 1, u32(1200))
        self.assertEqual(self.next_frame(worker), (p.WS_MESSAGE, p.FLAG_BINARY, 1, message))
        # Taken messages were credited back in quarter-window batches (before it waited again).
        worker.sock.sendall(p.encode_ws_close(0, 1, 1000))
        self.assertEqual(self.next_frame(worker)[0], p.WS_CLOSE)
        self.assertGreaterEqual(self.credits, 1200)


class ThreadWebSocketTest(WebSocketContract, unittest.TestCase):
    WORKER_CLASS = 'thread'


class SyncWebSocketTest(WebSocketContract, unittest.TestCase):
    WORKER_CLASS = 'sync'
    THREADS = 1


@unittest.skipUnless(HAS_GEVENT, 'gevent is not installed for %s' % sys.executable)
class GeventWebSocketTest(WebSocketContract, unittest.TestCase):
    WORKER_CLASS = 'gevent'
