"""A fake front for tests and measurements: spawns a real worker process with a socketpair as its
file descriptor 3, exactly as the Node front does, and speaks the protocol to it."""

import collections
import json
import os
import socket
import subprocess
import sys
import threading

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, 'python'))

from web2py_on_node_worker import protocol as p  # noqa: E402

LAUNCHER = os.path.join(REPO, 'python', 'w2n_worker.py')
FIXTURE_APPS = os.path.join(REPO, 'test', 'fixtures', 'apps')
FIXTURE_WEB2PY = os.path.join(REPO, 'test', 'fixtures', 'web2py')
DEFAULT_TIMEOUT_S = 20


def environ_pairs(method='GET', path='/', query='', headers=None, body_bytes=None, scheme='http',
                  remote_addr='127.0.0.1'):
    """The CGI part of an environ, as the front would send it."""
    pairs = {
        'REQUEST_METHOD': method, 'SCRIPT_NAME': '', 'PATH_INFO': path, 'QUERY_STRING': query,
        'REQUEST_URI': path + ('?' + query if query else ''), 'SERVER_PROTOCOL': 'HTTP/1.1',
        'SERVER_NAME': 'localhost', 'SERVER_PORT': '8000', 'REMOTE_ADDR': remote_addr,
        'REMOTE_PORT': '50000', 'wsgi.url_scheme': scheme,
    }
    if scheme == 'https':
        pairs['HTTPS'] = 'on'
    if body_bytes is not None:
        pairs['CONTENT_LENGTH'] = str(body_bytes)
    for name, value in (headers or {}).items():
        key = name.upper().replace('-', '_')
        pairs[key if key in ('CONTENT_TYPE', 'CONTENT_LENGTH') else 'HTTP_' + key] = value
    return pairs


def encode_pairs(pairs):
    flat = []
    for key, value in pairs.items():
        flat.append(key)
        flat.append(value)
    return p.encode_strings(flat)


class Response:
    """What the worker answered for one request id."""

    def __init__(self):
        self.status = None
        self.headers = []
        self.chunks = []
        self.frames = []
        self.error = None
        self.sendfile = None

    @property
    def body(self):
        return b''.join(self.chunks)

    @property
    def status_code(self):
        return int(self.status.split(' ', 1)[0]) if self.status else None

    def header(self, name):
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


class WorkerProcess:
    """A worker process and the front's end of its channel."""

    def __init__(self, app, worker_class='thread', threads=4, python=None, request_window=256 * 1024,
                 response_window=1024 * 1024, profiler_dir=None, handshake=None, send_handshake=True,
                 env=None, realtime_max_message=0):
        front, worker_end = socket.socketpair()
        self.sock = front
        child_fd = worker_end.fileno()
        self.proc = subprocess.Popen(
            [python or sys.executable, LAUNCHER],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            pass_fds=[3], preexec_fn=lambda: os.dup2(child_fd, 3), env=env)
        worker_end.close()
        self.decoder = p.Decoder()
        self.backlog = collections.deque()
        self.output = {'stdout': [], 'stderr': []}
        self._readers = [self._relay(self.proc.stdout, 'stdout'), self._relay(self.proc.stderr, 'stderr')]
        self.sock.settimeout(DEFAULT_TIMEOUT_S)
        self.handshake = dict(protocol=p.PROTOCOL_VERSION, app=app, workerId=1, threads=threads,
                              workerClass=worker_class, requestWindow=request_window,
                              responseWindow=response_window, profilerDir=profiler_dir,
                              realtimeMaxMessage=realtime_max_message)
        if handshake:
            self.handshake.update(handshake)
        self.ready = None
        if send_handshake:
            self.send(p.HANDSHAKE, 0, 0, json.dumps(self.handshake).encode())

    def _relay(self, stream, name):
        def pump():
            for line in iter(stream.readline, b''):
                self.output[name].append(line.decode('utf-8', 'replace'))
        thread = threading.Thread(target=pump, daemon=True)
        thread.start()
        return thread

    @property
    def stderr(self):
        return ''.join(self.output['stderr'])

    # --- frames

    def send(self, frame_type, flags, request_id, payload=b''):
        self.sock.sendall(p.encode_frame(frame_type, flags, request_id, payload))

    def read_frame(self):
        """The next frame, or None at EOF."""
        while not self.backlog:
            data = self.sock.recv(1 << 20)
            if not data:
                return None
            self.backlog.extend(self.decoder.feed(data))
        return self.backlog.popleft()

    def wait_ready(self):
        """READY's JSON, or raise with the ERROR the worker sent instead."""
        frame = self.read_frame()
        if frame is None:
            raise AssertionError('worker closed the channel before READY; stderr:\n' + self.stderr)
        frame_type, _, request_id, payload = frame
        if frame_type != p.READY:
            raise AssertionError('expected READY, got %s %r; stderr:\n%s'
                                 % (p.FRAME_NAMES.get(frame_type), payload[:2000], self.stderr))
        self.ready = json.loads(payload)
        return self.ready

    def start_request(self, request_id, pairs=None, body=None, chunk_bytes=p.MAX_CHUNK, **environ):
        """REQUEST, then the whole body in BODY frames (ignores the request window: small bodies)."""
        if pairs is None:
            pairs = environ_pairs(body_bytes=len(body) if body is not None else None, **environ)
        payload = encode_pairs(pairs)
        if body is None:
            self.send(p.REQUEST, p.FLAG_END, request_id, payload)
            return
        self.send(p.REQUEST, 0, request_id, payload)
        for offset in range(0, len(body), chunk_bytes):
            self.send(p.BODY, 0, request_id, body[offset:offset + chunk_bytes])
        self.send(p.BODY, p.FLAG_END, request_id)

    def collect(self, request_id, credit=True, on_frame=None):
        """Frames for ``request_id`` until END or ERROR -> Response. Credits RESPONSE bodies."""
        response = Response()
        while True:
            frame = self.read_frame()
            if frame is None:
                raise EOFError('channel closed while waiting for request %d; stderr:\n%s'
                               % (request_id, self.stderr))
            frame_type, flags, frame_id, payload = frame
            if on_frame is not None and on_frame(frame):
                continue
            if frame_id != request_id:
                raise AssertionError('frame %s for id %d while waiting for %d'
                                     % (p.FRAME_NAMES.get(frame_type), frame_id, request_id))
            response.frames.append(frame)
            if frame_type == p.RESPONSE:
                head, body = p.split_response(payload)
                response.status = head[0]
                response.headers = list(zip(head[1::2], head[2::2]))
                response.chunks.append(body)
                if credit and body:
                    self.send(p.CREDIT, 0, request_id, p._U32.pack(len(body)))
            elif frame_type == p.RESPONSE_BODY:
                response.chunks.append(payload)
                if credit and payload and not flags & p.FLAG_END:
                    self.send(p.CREDIT, 0, request_id, p._U32.pack(len(payload)))
            elif frame_type == p.SENDFILE:
                response.sendfile = p.decode_sendfile(payload)
            elif frame_type == p.ERROR:
                response.error = json.loads(payload)
                return response
            elif frame_type == p.CREDIT:
                continue
            else:
                raise AssertionError('unexpected frame %s' % p.FRAME_NAMES.get(frame_type))
            if flags & p.FLAG_END:
                return response

    def request(self, request_id, **kwargs):
        body = kwargs.pop('body', None)
        self.start_request(request_id, body=body, **kwargs)
        return self.collect(request_id)

    # --- process

    def shutdown(self):
        self.send(p.SHUTDOWN, 0, 0)

    def wait(self, timeout=DEFAULT_TIMEOUT_S):
        status = self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        return status

    def close(self):
        try:
            self.sock.close()
        finally:
            if self.proc.poll() is None:
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            for stream in (self.proc.stdout, self.proc.stderr):
                stream.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def wsgi_app(spec, cwd=FIXTURE_APPS):
    return {'kind': 'wsgi', 'spec': spec, 'cwd': cwd}
