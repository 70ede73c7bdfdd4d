"""The realtime hub's Python helper (web2py_on_node_worker.realtime): web2py's websocket_send,
posting bytes (web2py's own posts a str and raises TypeError on Python 3), signed as the hub checks."""
import hashlib
import hmac
import threading
import unittest
import urllib.error
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs

import worker_harness  # noqa: F401  (puts python/ on sys.path)
from web2py_on_node_worker import realtime


class _Recorder(BaseHTTPRequestHandler):
    posts = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length']))
        _Recorder.posts.append((self.path, self.headers.get('Content-Type'), body))
        status = 401 if b'refuse' in body else 200
        self.send_response(status)
        self.send_header('Content-Length', '0')
        self.end_headers()

    def log_message(self, *args):
        pass


class RealtimeHelperTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = HTTPServer(('127.0.0.1', 0), _Recorder)
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()
        cls.url = 'http://127.0.0.1:%d/_ws/' % cls.server.server_address[1]

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.server.server_close()

    def setUp(self):
        _Recorder.posts.clear()

    def test_signs_and_posts_form_bytes(self):
        realtime.websocket_send(self.url, 'héllo', 'key', 'room')
        path, content_type, body = _Recorder.posts[0]
        self.assertEqual(path, '/_ws/')
        self.assertEqual(content_type, 'application/x-www-form-urlencoded')
        fields = {k: v[0] for k, v in parse_qs(body.decode('ascii')).items()}
        self.assertEqual(fields['message'], 'héllo')
        self.assertEqual(fields['group'], 'room')
        self.assertEqual(fields['signature'], hmac.new(b'key', 'héllo'.encode(), hashlib.md5).hexdigest())

    def test_defaults_as_web2py(self):
        realtime.websocket_send(self.url, b'bytes too')
        fields = parse_qs(_Recorder.posts[0][2].decode('ascii'), keep_blank_values=True)
        self.assertEqual(fields['group'], ['default'])
        self.assertEqual(fields['signature'], [''])
        self.assertEqual(fields['message'], ['bytes too'])

    def test_token_and_refusal(self):
        realtime.websocket_token(self.url, 'tok', 'key')
        self.assertEqual(_Recorder.posts[0][0], '/_ws/token')
        with self.assertRaises(urllib.error.HTTPError) as caught:
            realtime.websocket_send(self.url, 'refuse', 'key')
        self.assertEqual(caught.exception.code, 401)


if __name__ == '__main__':
    unittest.main()
