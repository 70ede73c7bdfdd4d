"""PEP 3333 in the worker, in-process: environ, wsgi.input, start_response rules, write(),
result.close(), the response frames, and the fixture apps under wsgiref.validate."""

import importlib
import io
import json
import os
import sys
import tempfile
import threading
import time
import unittest
import wsgiref.util
import wsgiref.validate

from worker_harness import FIXTURE_APPS
from web2py_on_node_worker import protocol as p
from web2py_on_node_worker.body import ClientDisconnected, InputStream
from web2py_on_node_worker.exchange import Exchange, Signals
from web2py_on_node_worker import wsgi
from web2py_on_node_worker.wsgi import FileWrapper, RequestRunner, base_environ, build_environ


class FakeChannel:
    """Collects what the worker sends, as frames."""

    def __init__(self):
        self.sent = bytearray()
        self.lock = threading.Lock()

    def send(self, frame):
        with self.lock:
            self.sent += frame

    def send_parts(self, parts):
        self.send(b''.join(parts))

    def frames(self):
        return p.Decoder().feed(bytes(self.sent))


def later(delay, action):
    """Run ``action`` in another thread after ``delay`` seconds (the reader, in a test)."""
    timer = threading.Timer(delay, action)
    timer.start()
    return timer


class Fixture:
    """An exchange, its signals and a fake channel: what a request thread sees."""

    def __init__(self, request_id=1, response_window=1 << 20, request_window=256 * 1024, body=None):
        self.channel = FakeChannel()
        self.signals = Signals()
        self.exchange = Exchange(request_id, b'', response_window)
        self.stream = InputStream(self.exchange, self.signals, self.channel, request_window)
        self.exchange.body = self.stream
        if body is not None:
            for chunk in body:
                self.deliver(chunk)
            self.deliver(b'', True)

    def deliver(self, data, is_last=False):
        with self.signals.lock:
            self.stream.deliver(data, is_last)
            self.signals.notify(self.exchange)

    def credit(self, size):
        with self.signals.lock:
            self.exchange.credit += size
            self.signals.notify(self.exchange)

    def cancel(self):
        with self.signals.lock:
            self.exchange.is_cancelled = True
            self.signals.notify(self.exchange)

    def credits_sent(self):
        return [p.decode_u32(payload) for kind, _, _, payload in self.channel.frames() if kind == p.CREDIT]


class EnvironTest(unittest.TestCase):

    def test_pairs_and_wsgi_keys(self):
        payload = p.encode_strings(['REQUEST_METHOD', 'GET', 'PATH_INFO', '/caf\xe9', 'wsgi.url_scheme', 'https'])
        stream = io.BytesIO()
        environ = build_environ(payload, base_environ(True), stream)
        self.assertEqual(environ['PATH_INFO'], '/caf\xe9')
        self.assertEqual(environ['wsgi.url_scheme'], 'https')
        self.assertEqual(environ['wsgi.version'], (1, 0))
        self.assertIs(environ['wsgi.input'], stream)
        self.assertIs(environ['wsgi.errors'], sys.stderr)
        self.assertIs(environ['wsgi.input_terminated'], True)
        self.assertIs(environ['wsgi.multithread'], True)
        self.assertIs(environ['wsgi.run_once'], False)
        self.assertIs(environ['wsgi.file_wrapper'], FileWrapper)
        self.assertNotIn('PATH', environ)  # never the process environment

    def test_scheme_defaults_from_https(self):
        self.assertEqual(build_environ(b'HTTPS\0on', {}, None)['wsgi.url_scheme'], 'https')
        self.assertEqual(build_environ(b'', {}, None)['wsgi.url_scheme'], 'http')


class InputStreamTest(unittest.TestCase):

    def test_read_n_is_exact_across_chunks(self):
        stream = Fixture(body=[b'abc', b'defg', b'h']).stream
        self.assertEqual(stream.read(2), b'ab')
        self.assertEqual(stream.read(4), b'cdef')
        self.assertEqual(stream.read(10), b'gh')
        self.assertEqual(stream.read(10), b'')

    def test_read_all(self):
        for argument in ((), (-1,), (None,)):
            with self.subTest(argument=argument):
                stream = Fixture(body=[b'abc', b'', b'def']).stream
                self.assertEqual(stream.read(1), b'a')
                self.assertEqual(stream.read(*argument), b'bcdef')
                self.assertEqual(stream.read(*argument), b'')

    def test_read_zero(self):
        self.assertEqual(Fixture(body=[b'abc']).stream.read(0), b'')

    def test_readline(self):
        stream = Fixture(body=[b'one\ntw', b'o\nthr', b'ee']).stream
        self.assertEqual(stream.readline(), b'one\n')
        self.assertEqual(stream.readline(), b'two\n')
        self.assertEqual(stream.readline(), b'three')
        self.assertEqual(stream.readline(), b'')

    def test_readline_with_size(self):
        stream = Fixture(body=[b'abcdef\n', b'xy\n']).stream
        self.assertEqual(stream.readline(4), b'abcd')
        self.assertEqual(stream.readline(10), b'ef\n')
        self.assertEqual(stream.readline(0), b'')
        self.assertEqual(stream.readline(-1), b'xy\n')

    def test_readlines_and_iteration(self):
        self.assertEqual(Fixture(body=[b'a\nb', b'\nc']).stream.readlines(), [b'a\n', b'b\n', b'c'])
        self.assertEqual(Fixture(body=[b'a\nbb\nc\n']).stream.readlines(3), [b'a\n', b'bb\n'])
        self.assertEqual(list(Fixture(body=[b'a\n', b'b\n']).stream), [b'a\n', b'b\n'])

    def test_empty_body(self):
        stream = Fixture(body=[]).stream
        self.assertEqual((stream.read(), stream.readline(), stream.readlines()), (b'', b'', []))

    def test_blocks_until_the_reader_delivers(self):
        fixture = Fixture()
        later(0.05, lambda: fixture.deliver(b'late'))
        later(0.1, lambda: fixture.deliver(b'', True))
        self.assertEqual(fixture.stream.read(), b'late')

    def test_credits_in_quarter_windows_and_before_waiting(self):
        fixture = Fixture(request_window=400)
        for _ in range(4):
            fixture.deliver(b'x' * 100)
        self.assertEqual(fixture.stream.read(250), b'x' * 250)
        self.assertEqual(fixture.credits_sent(), [100, 100])  # batches of window/4
        self.assertEqual(fixture.stream.read(130), b'x' * 130)
        self.assertEqual(fixture.credits_sent(), [100, 100, 100])
        # The buffer is nearly empty: before it waits, the stream credits what it has read.
        later(0.05, lambda: fixture.deliver(b'y', True))
        self.assertEqual(fixture.stream.read(), b'x' * 20 + b'y')
        self.assertEqual(sum(fixture.credits_sent()), 400)

    def test_no_credit_once_the_body_has_all_arrived(self):
        fixture = Fixture(request_window=4, body=[b'abcdefgh'])
        self.assertEqual(fixture.stream.read(), b'abcdefgh')
        self.assertEqual(fixture.credits_sent(), [])

    def test_cancel_makes_reads_raise(self):
        fixture = Fixture()
        later(0.05, fixture.cancel)
        with self.assertRaises(OSError) as caught:
            fixture.stream.read(10)
        self.assertIsInstance(caught.exception, ClientDisconnected)
        self.assertEqual(str(caught.exception), 'client disconnected')
        with self.assertRaises(OSError):
            fixture.stream.readline()


def run_app(app, fixture=None, payload=b'REQUEST_METHOD\0GET\0PATH_INFO\0/'):
    """Run ``app`` like the worker does -> (frames sent, fixture, done-callback calls)."""
    fixture = fixture or Fixture(body=[])
    fixture.exchange.payload = payload
    done = []
    runner = RequestRunner(app, fixture.channel, fixture.signals, base_environ(False), done.append)
    with quiet_stderr() as stderr:
        runner.run(fixture.exchange)
    fixture.stderr = stderr.getvalue()
    return fixture.channel.frames(), fixture, done


def simple_app(status='200 OK', headers=(('Content-Type', 'text/plain'),), body=(b'hi',)):
    def app(environ, start_response):
        start_response(status, list(headers))
        return list(body)
    return app


class Closing:
    """An iterable that records close() and can fail while iterated."""

    def __init__(self, chunks, fail_at=None):
        self.chunks = chunks
        self.fail_at = fail_at
        self.closed = 0

    def __iter__(self):
        for index, chunk in enumerate(self.chunks):
            if index == self.fail_at:
                raise ValueError('broken iterable')
            yield chunk

    def close(self):
        self.closed += 1


def error_of(frames):
    (kind, _, _, payload), = [frame for frame in frames if frame[0] == p.ERROR]
    return json.loads(payload)


class StartResponseTest(unittest.TestCase):

    def assert_bad(self, app, fragment):
        frames, _, _ = run_app(app)
        self.assertEqual([frame[0] for frame in frames], [p.ERROR])
        error = error_of(frames)
        self.assertEqual(error['code'], p.ERR_APP_BAD_RESPONSE)
        self.assertIn(fragment, error['message'])
        self.assertIn('Traceback', error['traceback'])

    def test_status_rules(self):
        for status, fragment in ((b'200 OK', 'not a str'), ('200', 'NNN reason'), ('OK 200', 'NNN reason'),
                                 ('200 OK\r\nX: y', 'NNN reason'), ('2000 OK', 'NNN reason')):
            with self.subTest(status=status):
                self.assert_bad(simple_app(status=status), fragment)

    def test_a_status_that_is_not_latin1_is_named(self):
        self.assert_bad(simple_app(status='200 \u2713'), "status '200 \u2713' is not a latin-1 string")

    def test_header_rules(self):
        cases = (
            (('X-A', b'bytes'), 'must be str'),
            (('Bad Name', 'v'), 'not an HTTP token'),
            (('X-A', 'a\r\nSet-Cookie: x=1'), 'control character'),
            (('X-A', 'nul\0'), 'control character'),
            (('X-A', 'caf\u20ac'), "header 'X-A': value 'caf\u20ac' is not a latin-1 string"),
            (('X-A', '\u202e\u2028x'), "header 'X-A': value '\\u202e\\u2028x' is not a latin-1 string"),
            (('Transfer-Encoding', 'chunked'), 'hop-by-hop'),
            (('Upgrade', 'websocket'), 'hop-by-hop'),
            (('Content-Length', 'ten'), 'not a number'),
        )
        for header, fragment in cases:
            with self.subTest(header=header):
                self.assert_bad(simple_app(headers=[header]), fragment)
        self.assert_bad(simple_app(headers=['not-a-pair']), 'list of (name, value)')

    def test_connection_and_keep_alive_are_dropped(self):
        frames, _, _ = run_app(simple_app(headers=[('Connection', 'close'), ('Keep-Alive', 'timeout=5'),
                                                   ('X-Kept', 'yes')]))
        head, _ = p.split_response(frames[0][3])
        self.assertEqual(head, ['200 OK', 'X-Kept', 'yes'])

    def test_latin1_values_and_tabs_pass(self):
        frames, _, _ = run_app(simple_app(headers=[('X-Name', 'caf\xe9\tok')]))
        self.assertEqual(p.split_response(frames[0][3])[0], ['200 OK', 'X-Name', 'caf\xe9\tok'])

    def test_second_call_needs_exc_info(self):
        def app(environ, start_response):
            start_response('200 OK', [])
            start_response('500 Oops', [])
            return [b'']
        self.assert_bad(app, 'second time without exc_info')

    def test_exc_info_replaces_the_head_before_it_is_sent(self):
        def app(environ, start_response):
            start_response('200 OK', [('X-First', '1')])
            try:
                raise KeyError('x')
            except KeyError:
                start_response('500 Internal Server Error', [('X-Second', '2')], sys.exc_info())
            return [b'error page']
        frames, _, _ = run_app(app)
        (kind, flags, _, payload), = frames
        self.assertEqual(p.split_response(payload), (['500 Internal Server Error', 'X-Second', '2'], b'error page'))

    def test_exc_info_reraises_once_the_head_is_sent(self):
        def app(environ, start_response):
            write = start_response('200 OK', [])
            write(b'partial')
            try:
                raise KeyError('late')
            except KeyError:
                start_response('500 Oops', [], sys.exc_info())
            return [b'never']
        frames, _, _ = run_app(app)
        self.assertEqual([frame[0] for frame in frames], [p.RESPONSE, p.ERROR])
        self.assertEqual(error_of(frames)['message'], "KeyError: 'late'")

    def test_no_start_response(self):
        self.assert_bad(lambda environ, start_response: [b'x'], 'before start_response')
        self.assert_bad(lambda environ, start_response: [], 'before start_response')

    def test_body_must_be_bytes(self):
        for chunk in (1, None, bytearray(b'x'), memoryview(b'x')):
            with self.subTest(chunk=chunk):
                self.assert_bad(simple_app(body=[chunk]), 'not bytes')
                self.assert_bad(lambda e, s: (s('200 OK', []), iter([chunk]))[1], 'not bytes')
        self.assert_bad(lambda e, s: s('200 OK', []) and None, 'not an iterable')

    def test_write_stays_strict_about_str(self):
        self.assert_bad(lambda e, s: s('200 OK', [])('text') or [], 'write() takes bytes, not str')


class StrBodyTest(unittest.TestCase):
    """Issue 14: a str yielded by the body iterable is encoded (web2py's HTTP(200, T('...')))."""

    def setUp(self):
        wsgi._warned_paths.clear()

    def body_of(self, frames):
        self.assertNotIn(p.ERROR, [frame[0] for frame in frames], frames)
        body = b''
        for kind, _, _, payload in frames:
            body += p.split_response(payload)[1] if kind == p.RESPONSE else payload
        return body

    def text_app(self, chunks, content_type='text/html; charset=UTF-8', as_list=False):
        def app(environ, start_response):
            start_response('200 OK', [('Content-Type', content_type)] if content_type else [])
            return list(chunks) if as_list else iter(chunks)
        return app

    def test_str_chunks_are_encoded_in_utf8_by_default(self):
        for content_type in ('text/html; charset=UTF-8', 'text/plain', None, 'text/html; charset=no-such-charset',
                             'text/html; charset=base64'):
            for as_list in (False, True):
                with self.subTest(content_type=content_type, as_list=as_list):
                    frames, _, _ = run_app(self.text_app(['caf\xe9 ', '\u20ac', b'!'], content_type, as_list))
                    self.assertEqual(self.body_of(frames), 'caf\xe9 \u20ac!'.encode('utf-8'))

    def test_the_content_type_charset_is_used(self):
        for content_type in ('text/html; charset=ISO-8859-1', 'text/html;charset="latin-1"', 'text/html; Charset=latin1'):
            with self.subTest(content_type=content_type):
                frames, _, _ = run_app(self.text_app(['caf\xe9'], content_type))
                self.assertEqual(self.body_of(frames), b'caf\xe9')

    def test_text_the_charset_cannot_encode_is_a_bad_response(self):
        frames, _, _ = run_app(self.text_app(['\u20ac'], 'text/plain; charset=ascii'))
        self.assertEqual(error_of(frames)['code'], p.ERR_APP_BAD_RESPONSE)
        self.assertIn('ascii cannot encode', error_of(frames)['message'])

    def test_str_before_start_response_is_still_refused(self):
        frames, _, _ = run_app(lambda environ, start_response: iter(['x']))
        self.assertEqual(error_of(frames)['code'], p.ERR_APP_BAD_RESPONSE)

    def test_one_warning_per_path(self):
        logged = []
        for path in ('/admin/default/index', '/admin/default/index', '/other', '/admin/default/index'):
            payload = p.encode_strings(['REQUEST_METHOD', 'GET', 'SCRIPT_NAME', '', 'PATH_INFO', path])
            frames, fixture, _ = run_app(self.text_app(['a', 'b']), payload=payload)
            self.assertEqual(self.body_of(frames), b'ab')
            logged += [line for line in fixture.stderr.splitlines() if line.startswith('w2n-event ')]
        events_ = [(line.split(' ')[1], json.loads(line.split(' ', 2)[2])) for line in logged]
        self.assertEqual(events_, [
            ('app.str_body', {'path': '/admin/default/index', 'charset': 'utf-8', 'isLastLogged': False}),
            ('app.str_body', {'path': '/other', 'charset': 'utf-8', 'isLastLogged': False}),
        ])

    def test_the_warned_paths_are_bounded(self):
        original = wsgi.MAX_WARNED_PATHS
        wsgi.MAX_WARNED_PATHS = 2
        self.addCleanup(setattr, wsgi, 'MAX_WARNED_PATHS', original)
        flags = []
        for path in ('/1', '/2', '/3'):
            payload = p.encode_strings(['PATH_INFO', path])
            _, fixture, _ = run_app(self.text_app(['a']), payload=payload)
            flags += [json.loads(line.split(' ', 2)[2])['isLastLogged'] for line in fixture.stderr.splitlines()
                      if line.startswith('w2n-event ')]
        self.assertEqual(flags, [False, True])
        self.assertEqual(len(wsgi._warned_paths), 2)


class ResponseFramesTest(unittest.TestCase):

    def test_small_list_is_one_frame_with_end(self):
        frames, _, done = run_app(simple_app(body=[b'Hello, ', b'World!']))
        (kind, flags, request_id, payload), = frames
        self.assertEqual((kind, flags, request_id), (p.RESPONSE, p.FLAG_END, 1))
        self.assertEqual(p.split_response(payload), (['200 OK', 'Content-Type', 'text/plain'], b'Hello, World!'))
        self.assertEqual(len(done), 1)

    def test_empty_body(self):
        frames, _, _ = run_app(simple_app(status='204 No Content', headers=[], body=[]))
        self.assertEqual(frames, [(p.RESPONSE, p.FLAG_END, 1, p.encode_response(p.FLAG_END, 1, b'204 No Content')[12:])])

    def test_large_list_is_split_into_max_chunk_frames(self):
        body = b'a' * (p.MAX_CHUNK + 10) + b'b' * 5
        frames, _, _ = run_app(simple_app(body=[body[:p.MAX_CHUNK + 10], body[p.MAX_CHUNK + 10:]]))
        # Each list item in frames of at most MAX_CHUNK; END rides on the last one.
        self.assertEqual([(kind, flags) for kind, flags, _, _ in frames],
                         [(p.RESPONSE, 0), (p.RESPONSE_BODY, 0), (p.RESPONSE_BODY, p.FLAG_END)])
        first = p.split_response(frames[0][3])[1]
        self.assertEqual(len(first), p.MAX_CHUNK)
        self.assertEqual(first + frames[1][3] + frames[2][3], body)

    def test_a_large_single_chunk_is_not_copied_whole(self):
        body = bytes(range(256)) * 4096  # 1 MiB
        frames, _, _ = run_app(simple_app(body=[body]))
        self.assertEqual([len(payload) for _, _, _, payload in frames[1:]], [p.MAX_CHUNK] * 3)
        self.assertEqual(frames[-1][1], p.FLAG_END)
        self.assertEqual(p.split_response(frames[0][3])[1] + b''.join(f[3] for f in frames[1:]), body)

    def test_a_list_too_long_for_one_frame_declares_its_length(self):
        body = [b'a' * p.MAX_CHUNK, b'b' * 10]
        frames, _, _ = run_app(simple_app(body=body))
        head, _ = p.split_response(frames[0][3])
        self.assertEqual(head, ['200 OK', 'Content-Type', 'text/plain', 'Content-Length', str(p.MAX_CHUNK + 10)])

    def test_declared_length_is_kept_and_bodyless_statuses_get_none(self):
        declared = [('Content-Length', str(p.MAX_CHUNK + 1))]
        frames, _, _ = run_app(simple_app(headers=declared, body=[b'a' * p.MAX_CHUNK, b'b']))
        self.assertEqual(p.split_response(frames[0][3])[0], ['200 OK', 'Content-Length', str(p.MAX_CHUNK + 1)])
        frames, _, _ = run_app(simple_app(status='304 Not Modified', headers=[], body=[b'a' * p.MAX_CHUNK, b'b']))
        self.assertEqual(p.split_response(frames[0][3])[0], ['304 Not Modified'])

    def test_a_generator_declares_no_length(self):
        def app(environ, start_response):
            start_response('200 OK', [])
            yield b'a' * p.MAX_CHUNK
            yield b'b'
        frames, _, _ = run_app(app)
        self.assertEqual(p.split_response(frames[0][3])[0], ['200 OK'])

    def test_head_waits_for_the_first_non_empty_chunk(self):
        seen = []

        def app(environ, start_response):
            start_response('200 OK', [])
            yield b''
            seen.append(len(fixture.channel.sent))
            yield b'data'
            yield b'more'
        fixture = Fixture(body=[])
        frames, _, _ = run_app(app, fixture)
        self.assertEqual(seen, [0])
        self.assertEqual([(kind, flags) for kind, flags, _, _ in frames],
                         [(p.RESPONSE, 0), (p.RESPONSE_BODY, 0), (p.RESPONSE_BODY, p.FLAG_END)])
        self.assertEqual(p.split_response(frames[0][3])[1] + frames[1][3] + frames[2][3], b'datamore')

    def test_generator_with_only_empty_chunks(self):
        def app(environ, start_response):
            start_response('200 OK', [])
            yield b''
        frames, _, _ = run_app(app)
        self.assertEqual([(kind, flags) for kind, flags, _, _ in frames], [(p.RESPONSE, p.FLAG_END)])

    def test_write_callable(self):
        sys.path.insert(0, FIXTURE_APPS)
        try:
            writer = importlib.import_module('writer')
        finally:
            sys.path.remove(FIXTURE_APPS)
        frames, _, _ = run_app(writer.app)
        self.assertEqual([(kind, flags) for kind, flags, _, _ in frames],
                         [(p.RESPONSE, 0), (p.RESPONSE_BODY, 0), (p.RESPONSE_BODY, p.FLAG_END)])
        body = p.split_response(frames[0][3])[1] + b''.join(frame[3] for frame in frames[1:])
        self.assertEqual(body, b'Hello, writer!')

    def test_window_blocks_the_writer_until_credit(self):
        fixture = Fixture(body=[], response_window=10)
        later(0.1, lambda: fixture.credit(10))
        later(0.2, lambda: fixture.credit(100))
        started = time.monotonic()
        frames, _, _ = run_app(simple_app(body=[b'0123456789', b'abcdefghij', b'KLMNOPQRST']), fixture)
        self.assertGreaterEqual(time.monotonic() - started, 0.15)
        sizes = [len(p.split_response(payload)[1]) if kind == p.RESPONSE else len(payload)
                 for kind, _, _, payload in frames]
        self.assertEqual(sizes, [10, 10, 10])
        self.assertEqual(frames[-1][1], p.FLAG_END)

    def test_a_chunk_larger_than_the_credit_is_split(self):
        fixture = Fixture(body=[], response_window=4)
        later(0.05, lambda: fixture.credit(100))
        frames, _, _ = run_app(simple_app(body=[b'x' * 30]), fixture)
        sizes = [len(p.split_response(payload)[1]) if kind == p.RESPONSE else len(payload)
                 for kind, _, _, payload in frames]
        self.assertEqual(sizes, [4, 26])


class ErrorsAndCloseTest(unittest.TestCase):

    def test_exception_before_the_head(self):
        def app(environ, start_response):
            return [str(1 // 0).encode()]
        frames, fixture, done = run_app(app)
        error = error_of(frames)
        self.assertEqual(len(frames), 1)
        self.assertEqual(error['code'], p.ERR_APP_EXCEPTION)
        self.assertEqual(error['message'], 'ZeroDivisionError: integer division or modulo by zero')
        self.assertIn('ZeroDivisionError', error['traceback'])
        # Logged once, by the front (request.failed carries the traceback): not on stderr too.
        self.assertEqual(fixture.stderr, '')
        self.assertEqual(len(done), 1)

    def test_a_traceback_the_front_cannot_get_goes_to_stderr(self):
        class DeadChannel(FakeChannel):
            def send(self, frame):
                raise BrokenPipeError('the front is gone')
        fixture = Fixture(body=[])
        fixture.channel = DeadChannel()
        runner = RequestRunner(lambda e, s: [str(1 // 0).encode()], fixture.channel, fixture.signals,
                               base_environ(False), lambda exchange: None)
        with quiet_stderr() as stderr:
            runner.run(fixture.exchange)
        self.assertEqual(stderr.getvalue().count('ZeroDivisionError: integer division'), 1)

    def test_close_is_called_after_success(self):
        result = Closing([b'a', b'b'])
        frames, _, _ = run_app(lambda e, s: (s('200 OK', []), result)[1])
        self.assertEqual(result.closed, 1)
        self.assertEqual(frames[-1][1], p.FLAG_END)

    def test_close_is_called_when_iteration_fails_after_the_head(self):
        result = Closing([b'a', b'b'], fail_at=1)
        frames, _, _ = run_app(lambda e, s: (s('200 OK', []), result)[1])
        self.assertEqual(result.closed, 1)
        self.assertEqual([frame[0] for frame in frames], [p.RESPONSE, p.ERROR])
        self.assertEqual(error_of(frames)['message'], 'ValueError: broken iterable')

    def test_close_is_called_on_a_bad_response(self):
        result = Closing([42])
        frames, _, _ = run_app(lambda e, s: (s('200 OK', []), result)[1])
        self.assertEqual(result.closed, 1)
        self.assertEqual(error_of(frames)['code'], p.ERR_APP_BAD_RESPONSE)

    def test_close_raising_after_end_is_only_logged(self):
        class Bad(Closing):
            def close(self):
                raise RuntimeError('close failed')
        frames, fixture, _ = run_app(lambda e, s: (s('200 OK', []), Bad([b'x']))[1])
        self.assertEqual([(kind, flags) for kind, flags, _, _ in frames],
                         [(p.RESPONSE, 0), (p.RESPONSE_BODY, p.FLAG_END)])  # END, and no ERROR after it
        self.assertIn('close failed', fixture.stderr)

    def test_cancel_while_waiting_for_credit(self):
        fixture = Fixture(body=[], response_window=5)
        result = Closing([b'12345', b'67890', b'never'])
        later(0.05, fixture.cancel)
        frames, _, done = run_app(lambda e, s: (s('200 OK', []), result)[1], fixture)
        self.assertEqual(result.closed, 1)
        self.assertEqual([frame[0] for frame in frames], [p.RESPONSE])  # nothing after the cancel
        self.assertEqual(len(done), 1)

    def test_cancel_while_reading_the_body(self):
        fixture = Fixture()
        seen = []

        def app(environ, start_response):
            try:
                environ['wsgi.input'].read()
            except OSError as error:
                seen.append(str(error))
                raise
        later(0.05, fixture.cancel)
        frames, _, _ = run_app(app, fixture)
        self.assertEqual(seen, ['client disconnected'])
        self.assertEqual(frames, [])

    def test_system_exit_is_an_application_error(self):
        def app(environ, start_response):
            raise SystemExit(2)
        frames, _, _ = run_app(app)
        self.assertEqual(error_of(frames)['code'], p.ERR_APP_EXCEPTION)


class FileWrapperTest(unittest.TestCase):

    def setUp(self):
        handle, self.path = tempfile.mkstemp()
        os.write(handle, b'0123456789' * 100)
        os.close(handle)
        self.addCleanup(os.unlink, self.path)

    def file_app(self, stream, content_length=None):
        def app(environ, start_response):
            headers = [('Content-Type', 'application/octet-stream')]
            if content_length is not None:
                headers.append(('Content-Length', str(content_length)))
            start_response('200 OK', headers)
            return environ['wsgi.file_wrapper'](stream, 4096)
        return app

    def test_regular_file_is_handed_over_by_descriptor(self):
        stream = open(self.path, 'rb')
        stream.seek(10)
        fixture = Fixture(body=[])
        opened = later(0.05, lambda: self.answer(fixture, True))
        frames, _, _ = run_app(self.file_app(stream, 990), fixture)
        opened.join()
        self.assertEqual([(kind, flags) for kind, flags, _, _ in frames], [(p.RESPONSE, 0), (p.SENDFILE, p.FLAG_END)])
        head, inline = p.split_response(frames[0][3])
        self.assertEqual((head[-2:], inline), (['Content-Length', '990'], b''))
        fd, offset, length = p.decode_sendfile(frames[1][3])
        self.assertEqual((fd, offset, length), (stream.fileno() if not stream.closed else fd, 10, 990))
        self.assertTrue(stream.closed)  # closed after FILE_OPENED

    def test_content_length_smaller_than_the_file_limits_the_length(self):
        fixture = Fixture(body=[])
        later(0.05, lambda: self.answer(fixture, False))
        frames, _, _ = run_app(self.file_app(open(self.path, 'rb'), 100), fixture)
        self.assertEqual(p.decode_sendfile(frames[1][3])[1:], (0, 100))

    def test_content_length_larger_than_the_file_is_corrected(self):
        fixture = Fixture(body=[])
        later(0.05, lambda: self.answer(fixture, True))
        frames, _, _ = run_app(self.file_app(open(self.path, 'rb'), 5000), fixture)
        self.assertEqual(p.split_response(frames[0][3])[0][-2:], ['Content-Length', '1000'])
        self.assertEqual(p.decode_sendfile(frames[1][3])[1:], (0, 1000))

    def test_other_file_likes_are_iterated(self):
        stream = io.BytesIO(b'x' * 100000)
        frames, _, _ = run_app(self.file_app(stream))
        body = p.split_response(frames[0][3])[1] + b''.join(frame[3] for frame in frames[1:])
        self.assertEqual(body, b'x' * 100000)
        self.assertTrue(stream.closed)

    @staticmethod
    def answer(fixture, is_open):
        with fixture.signals.lock:
            fixture.exchange.file_opened = is_open
            fixture.signals.notify(fixture.exchange)


class quiet_stderr:
    def __enter__(self):
        self.original, sys.stderr = sys.stderr, io.StringIO()
        return sys.stderr

    def __exit__(self, *exc):
        sys.stderr = self.original


class FixtureAppsValidateTest(unittest.TestCase):
    """Every fixture app passes wsgiref.validate (on its well-behaved paths)."""

    #: module -> (PATH_INFO, QUERY_STRING) cases; a module not listed is driven with GET-like '/'
    CASES = {
        'crash': [('/alive', '')],
        'stream': [('/', 'n=200000'), ('/', 'n=1000&cl=1')],
        'slow': [('/', 's=0.01')],
        'filewrap': [('/', 'path=' + os.path.abspath(__file__)), ('/', 'path=/no/such/file')],
        'suite': [('/hello', ''), ('/echo', ''), ('/nothing', '')],
        'spin': [('/status', ''), ('/', 'kind=sleep&s=0')],  # its other requests never end
        'session_lock': [('/ping', ''), ('/lock', 's=0')],
        'framing': [('/framing/list', 'n=10&parts=3'), ('/framing/gen', 'n=10&cl=1'), ('/framing/write', 'n=3'),
                    ('/framing/empty', '')],
        'badheaders': [('/', ''), ('/', 'kind=latin1'), ('/', 'kind=server')],
        'hits': [('/hits/a', ''), ('/hits/a/peek', '')],
        'neighbours': [('/quick', ''), ('/busy', ''), ('/wait', '')],  # /quick first: the others wait for it
    }
    #: fixtures that raise on purpose
    RAISING = {'boom': ZeroDivisionError}
    #: fixtures that break PEP 3333 on purpose (text: a body of str, as web2py's HTTP(200, T(...)))
    BREAKING = {'text'}

    def setUp(self):
        sys.path.insert(0, FIXTURE_APPS)
        self.addCleanup(sys.path.remove, FIXTURE_APPS)

    def drive(self, module_name, path, query, body=b'some body\nlines\n'):
        module = importlib.import_module(module_name)
        app = wsgiref.validate.validator(module.app)
        environ = {'SCRIPT_NAME': '', 'PATH_INFO': path, 'QUERY_STRING': query, 'REQUEST_METHOD': 'POST',
                   'CONTENT_LENGTH': str(len(body)), 'wsgi.input': io.BytesIO(body),
                   'wsgi.file_wrapper': wsgiref.util.FileWrapper}
        wsgiref.util.setup_testing_defaults(environ)
        statuses = []

        def start_response(status, headers, exc_info=None):
            statuses.append(status)
            return lambda data: None
        result = app(environ, start_response)
        try:
            body = b''.join(result)
        finally:
            result.close()
        return statuses[0], body

    def test_fixture_apps_pass_the_validator(self):
        import warnings
        modules = sorted(name[:-3] for name in os.listdir(FIXTURE_APPS) if name.endswith('.py'))
        self.assertIn('hello', modules)
        for module_name in modules:
            if module_name in self.RAISING or module_name in self.BREAKING:
                continue
            for path, query in self.CASES.get(module_name, [('/', '')]):
                with self.subTest(app=module_name, path=path, query=query):
                    with warnings.catch_warnings():
                        warnings.simplefilter('error', wsgiref.validate.WSGIWarning)
                        status, _ = self.drive(module_name, path, query)
                    self.assertRegex(status, r'^[1-9]\d\d ')

    def test_bodies_read_through_the_validator(self):
        _, body = self.drive('upload', '/', '')
        self.assertEqual(json.loads(body)['bytes'], 16)
        _, body = self.drive('stream', '/', 'n=200000')
        self.assertEqual(len(body), 200000)
        _, body = self.drive('writer', '/', '')
        self.assertEqual(body, b'!')  # the validator's write() goes to our stub

    def test_raising_fixtures_raise_under_the_validator(self):
        for module_name, error in self.RAISING.items():
            with self.assertRaises(error):
                self.drive(module_name, '/', '')


if __name__ == '__main__':
    unittest.main()
