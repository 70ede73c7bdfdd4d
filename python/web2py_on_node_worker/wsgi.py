"""PEP 3333 for one request: the environ, start_response, write(), and sending the result.

The rules of start_response follow waitress's task.py: the status is a str ``NNN reason``; header
names and values are str; names are tokens; values hold no control characters (CR, LF, NUL...);
a second call needs exc_info, which is re-raised once the head has been sent; hop-by-hop headers
are refused, except ``Connection`` and ``Keep-Alive``, which are dropped (the front owns the
connection). Breaking a rule raises BadResponse, reported as W2N_ERR_APP_BAD_RESPONSE.

One leniency: a ``str`` yielded by the body iterable is encoded (in the charset of the response's
Content-Type, else UTF-8) instead of refused, with one warning per path (events.APP_STR_BODY).
web2py's own ``raise HTTP(200, T('...'))`` yields str (a lazy translation iterates as
characters), and web2py's servers (Rocket, gevent's pywsgi) encode it: refusing it turned admin's
"Admin is disabled because insecure channel" page into a 500. ``write()`` and the head stay strict.

The response goes out as frames (docs/protocol.md): the head waits for the first non-empty body
chunk or the end of the body; a list of bytes that fits one frame is one RESPONSE frame with END
and the body inline (one send per request); longer bodies follow in RESPONSE_BODY frames of at
most MAX_CHUNK bytes, within the response window; a regular file given to wsgi.file_wrapper is
handed to the front by descriptor (SENDFILE).
"""

import io
import json
import os
import re
import stat
import sys
import threading
import traceback

from . import events
from .body import ClientDisconnected
from .channel import ChannelClosed
from .exchange import RequestCancelled
from .protocol import (
    ERR_APP_BAD_RESPONSE, ERR_APP_EXCEPTION, ERROR, FLAG_END, MAX_CHUNK, MAX_PAYLOAD, RESPONSE_BODY,
    decode_pairs, encode_frame, encode_header, encode_response, encode_response_prefix, encode_sendfile,
)

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z").match
#: what HTTP (and Node's header check) refuses in a field value: controls other than tab
_BAD_VALUE = re.compile('[\x00-\x08\x0a-\x1f\x7f]').search
_STATUS = re.compile('[1-9][0-9][0-9] [^\x00-\x08\x0a-\x1f\x7f]*\\Z').match
#: hop-by-hop headers: the front manages the connection, so an application may not set them
_REFUSED_HOP_BY_HOP = frozenset((
    'proxy-authenticate', 'proxy-authorization', 'te', 'trailers', 'transfer-encoding', 'upgrade',
))
#: hop-by-hop headers many applications set anyway; harmless, so dropped rather than refused
_DROPPED_HOP_BY_HOP = frozenset(('connection', 'keep-alive'))
_HOP_BY_HOP = _REFUSED_HOP_BY_HOP | _DROPPED_HOP_BY_HOP
#: the largest head that still leaves room for a full body chunk in a RESPONSE frame
MAX_HEAD_BYTES = MAX_PAYLOAD - MAX_CHUNK - 4
#: how long to keep a file open for the front after SENDFILE if FILE_OPENED never comes
FILE_OPENED_TIMEOUT_S = 60.0
#: smallest read when a file_wrapper is iterated instead of handed over (PEP's block size is a hint)
MIN_FILE_BLOCK = 64 * 1024
#: an ERROR frame keeps the end of a longer traceback (the innermost frames)
MAX_TRACEBACK_CHARS = 1024 * 1024
#: an ERROR frame's message (the exception's last line) is cut to this many characters
MAX_MESSAGE_CHARS = 4 * 1024
#: paths remembered for "one str-body warning per path": bounded, whatever the clients ask for
MAX_WARNED_PATHS = 1000
_charset_param = re.compile(r';\s*charset\s*=\s*"?([^";\s]+)', re.IGNORECASE).search


class BadResponse(AssertionError):
    """The application broke a rule of PEP 3333 (reported as W2N_ERR_APP_BAD_RESPONSE).

    An AssertionError, as waitress and wsgiref raise for the same mistakes.
    """


class FileWrapper:
    """``wsgi.file_wrapper``: marks a file the front may stream itself (SENDFILE)."""

    def __init__(self, filelike, block_size=8192):
        self.filelike = filelike
        self.block_size = block_size
        close = getattr(filelike, 'close', None)
        if close is not None:
            self.close = close

    def __iter__(self):
        read = self.filelike.read
        size = max(self.block_size, MIN_FILE_BLOCK)
        while True:
            data = read(size)
            if not data:
                return
            yield data


def base_environ(is_multithread):
    """The environ keys that are the same for every request of this worker."""
    return {
        'wsgi.version': (1, 0),
        'wsgi.errors': sys.stderr,
        'wsgi.multithread': is_multithread,
        # Several worker processes usually serve the same application.
        'wsgi.multiprocess': True,
        'wsgi.run_once': False,
        'wsgi.input_terminated': True,
        'wsgi.file_wrapper': FileWrapper,
    }


def build_environ(payload, base, wsgi_input):
    """REQUEST pairs + the constant wsgi.* keys + this request's wsgi.input."""
    environ = decode_pairs(payload)
    environ.update(base)
    environ['wsgi.input'] = wsgi_input
    if 'wsgi.url_scheme' not in environ:
        environ['wsgi.url_scheme'] = 'https' if environ.get('HTTPS') == 'on' else 'http'
    return environ


class Response:
    """start_response, write() and the frames of one response."""

    __slots__ = ('_exchange', '_channel', '_signals', '_environ', 'status', '_fields', '_head',
                 'content_length', 'has_started', 'is_head_sent', 'is_complete', '_text_encoding')

    def __init__(self, exchange, channel, signals, environ=None):
        self._exchange = exchange
        self._channel = channel
        self._signals = signals
        #: the request's environ: names the path in a warning
        self._environ = environ if environ is not None else {}
        self.status = None
        #: [status, name, value, name, value, ...] as checked
        self._fields = None
        #: the fields encoded: what a RESPONSE frame carries
        self._head = None
        self.content_length = None
        self.has_started = False
        self.is_head_sent = False
        #: a frame with END went out: nothing more may be sent for this request
        self.is_complete = False
        #: how str body chunks are encoded, once one came (the Content-Type's charset or UTF-8)
        self._text_encoding = None

    # --- what the application calls

    def start_response(self, status, headers, exc_info=None):
        if exc_info:
            try:
                if self.is_head_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.has_started:
            raise BadResponse('start_response was called a second time without exc_info')
        if status.__class__ is not str:
            raise BadResponse('status %r is not a str' % (status,))
        if not _STATUS(status):
            raise BadResponse('status %r is not "NNN reason"' % (status,))
        fields = [status]
        content_length = None
        try:
            for name, value in headers:
                if name.__class__ is not str or value.__class__ is not str:
                    raise BadResponse('header %r: name and value must be str' % ((name, value),))
                if not _TOKEN(name):
                    raise BadResponse('header name %r is not an HTTP token' % (name,))
                if _BAD_VALUE(value):
                    raise BadResponse('header %s: value %r holds a control character (CR, LF, NUL...)'
                                      % (name, value))
                lowered = name.lower()
                if lowered in _HOP_BY_HOP:
                    if lowered in _DROPPED_HOP_BY_HOP:
                        continue
                    raise BadResponse('%s is a hop-by-hop header; a WSGI application cannot set it'
                                      ' (PEP 3333)' % name)
                if lowered == 'content-length':
                    if not (value.isdigit() and value.isascii()):
                        raise BadResponse('Content-Length %r is not a number' % (value,))
                    content_length = int(value)
                fields.append(name)
                fields.append(value)
        except (TypeError, ValueError) as error:
            raise BadResponse('headers must be a list of (name, value) tuples: %s' % error) from None
        self._set_head(fields)
        self.status = status
        self.content_length = content_length
        self.has_started = True
        return self.write

    def write(self, data):
        """The write() callable that start_response returns (PEP 3333, for legacy apps)."""
        if self.is_complete:
            raise BadResponse('write() called after the response ended')
        if data.__class__ is not bytes and not isinstance(data, bytes):
            raise BadResponse('write() takes bytes, not %s' % type(data).__name__)
        if data:
            self._send_body(data, False)

    # --- what the worker calls

    def send_result(self, result):
        """Send what the application returned. The caller calls result.close()."""
        kind = result.__class__
        is_sequence = kind is list or kind is tuple
        if is_sequence and not self.is_head_sent:
            body = self._small_body(result)
            if body is not None:
                self._send_whole(body)
                return
            self._declare_length(result)
        if kind is FileWrapper and self._send_file(result):
            return
        try:
            chunks = iter(result)
        except TypeError:
            raise BadResponse('the application returned %s, not an iterable of bytes'
                              % type(result).__name__) from None
        # A list's length is known, so END can ride on its last chunk instead of an empty frame.
        last = len(result) - 1 if is_sequence else -1
        exchange = self._exchange
        for index, chunk in enumerate(chunks):
            if exchange.is_cancelled:
                raise ClientDisconnected()
            if chunk.__class__ is not bytes and not isinstance(chunk, bytes):
                if not isinstance(chunk, str):
                    raise BadResponse('the response iterable yielded %s, not bytes' % type(chunk).__name__)
                chunk = self._encode_text(chunk)
            if chunk:
                self._send_body(chunk, index == last)
        if not self.is_complete:
            self._send_end()

    # --- internals

    def _encode_text(self, text):
        """A str body chunk as bytes (see the module docstring); the first one is logged."""
        self._require_start()
        encoding = self._text_encoding
        if encoding is None:
            encoding = self._text_encoding = _charset_of(self._fields)
            _warn_str_body(self._environ, encoding)
        try:
            return text.encode(encoding)
        except UnicodeEncodeError as error:
            raise BadResponse('the response iterable yielded str that %s cannot encode: %s'
                              % (encoding, error)) from None

    def _set_head(self, fields):
        try:
            head = '\0'.join(fields).encode('latin-1')
        except UnicodeEncodeError:
            raise BadResponse(_not_latin1(fields)) from None
        if len(head) > MAX_HEAD_BYTES:
            raise BadResponse('response head of %d bytes is too large' % len(head))
        self._fields = fields
        self._head = head

    def _small_body(self, result):
        """The body of a list/tuple of bytes that fits one frame and the window, else None.

        Larger lists are sent chunk by chunk rather than joined: a list of big chunks must not
        be copied into one huge bytes object.
        """
        limit = min(MAX_CHUNK, self._exchange.credit)
        if len(result) == 1:
            body = result[0]
            if (body.__class__ is bytes or isinstance(body, bytes)) and len(body) <= limit:
                return body
            return None
        total = 0
        for chunk in result:
            if chunk.__class__ is not bytes and not isinstance(chunk, bytes):
                return None
            total += len(chunk)
        return b''.join(result) if total <= limit else None

    def _declare_length(self, result):
        """A list or tuple of bytes too long for one frame: its length is known, so say it.

        With Content-Length the client keeps its connection; without it the front would have to
        send the body chunked (or close the connection after it, for HTTP/1.0).
        """
        if self.content_length is not None or not self.has_started or self.status[0] == '1' \
                or self.status[:3] in ('204', '304'):
            return
        total = 0
        for chunk in result:
            if chunk.__class__ is not bytes and not isinstance(chunk, bytes):
                return  # reported when the chunk is sent
            total += len(chunk)
        fields = self._fields
        fields.append('Content-Length')
        fields.append(str(total))
        self._set_head(fields)
        self.content_length = total

    def _require_start(self):
        if not self.has_started:
            raise BadResponse('the response began before start_response was called')
        if self._exchange.is_cancelled:
            raise ClientDisconnected()

    def _send_whole(self, body):
        """The fast path: head and the whole body in one RESPONSE frame with END."""
        self._require_start()
        self._channel.send(encode_response(FLAG_END, self._exchange.request_id, self._head, body))
        self.is_head_sent = True
        self.is_complete = True

    def _send_end(self):
        self._require_start()
        request_id = self._exchange.request_id
        if self.is_head_sent:
            self._channel.send(encode_frame(RESPONSE_BODY, FLAG_END, request_id))
        else:
            self._channel.send(encode_response(FLAG_END, request_id, self._head))
            self.is_head_sent = True
        self.is_complete = True

    def _send_body(self, data, is_last):
        """Send ``data`` (non-empty) in frames of at most MAX_CHUNK, within the window."""
        self._require_start()
        request_id = self._exchange.request_id
        send_parts = self._channel.send_parts
        total = len(data)
        view = memoryview(data) if total > MAX_CHUNK else data
        position = 0
        while position < total:
            size = self._take_credit(min(total - position, MAX_CHUNK))
            piece = view[position:position + size] if size < total else data
            position += size
            flags = FLAG_END if is_last and position == total else 0
            if self.is_head_sent:
                send_parts([encode_header(RESPONSE_BODY, flags, request_id, size), piece])
            else:
                head = self._head
                send_parts([encode_response_prefix(flags, request_id, len(head), size), head, piece])
                self.is_head_sent = True
        if is_last:
            self.is_complete = True

    def _take_credit(self, wanted):
        """Wait until the response window is open; take up to ``wanted`` bytes of it."""
        exchange = self._exchange
        signals = self._signals
        while True:
            with signals.lock:
                if exchange.is_cancelled:
                    raise ClientDisconnected()
                credit = exchange.credit
                if credit > 0:
                    granted = wanted if wanted < credit else credit
                    exchange.credit = credit - granted
                    return granted
            signals.wait_until(exchange, lambda: exchange.credit > 0 or exchange.is_cancelled)

    def _send_file(self, wrapper):
        """SENDFILE for a regular file -> True; False if it must be iterated instead."""
        filelike = wrapper.filelike
        try:
            fd = filelike.fileno()
            status = os.fstat(fd)
            if not stat.S_ISREG(status.st_mode):
                return False
            offset = filelike.tell()
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            return False
        self._require_start()
        length = max(0, status.st_size - offset)
        declared = self.content_length
        if declared is not None and declared < length:
            length = declared
        elif declared is not None and declared > length and not self.is_head_sent:
            # The file is shorter than the app said: announce what will really be sent.
            self._replace_content_length(length)
        if length == 0:
            self._send_end()
            return True
        exchange = self._exchange
        frames = []
        if not self.is_head_sent:
            head = self._head
            frames.append(encode_response_prefix(0, exchange.request_id, len(head), 0))
            frames.append(head)
        frames.append(encode_sendfile(exchange.request_id, fd, offset, length))
        self._channel.send(b''.join(frames))
        self.is_head_sent = True
        self.is_complete = True
        # Keep the file open until the front has its own descriptor for it.
        self._signals.wait_until(
            exchange, lambda: exchange.file_opened is not None or exchange.is_cancelled,
            FILE_OPENED_TIMEOUT_S)
        return True

    def _replace_content_length(self, length):
        fields = self._fields
        for index in range(1, len(fields), 2):
            if fields[index].lower() == 'content-length':
                fields[index + 1] = str(length)
        self._set_head(fields)
        self.content_length = length


def _charset_of(fields):
    """The charset named by Content-Type in ``fields`` when Python knows it as a text encoding,
    else UTF-8."""
    for index in range(1, len(fields), 2):
        if fields[index].lower() == 'content-type':
            match = _charset_param(fields[index + 1])
            if match is None:
                break
            charset = match.group(1).lower()
            try:
                ''.encode(charset)  # LookupError for a name Python does not know, or not a text encoding
            except LookupError:
                break
            return charset
    return 'utf-8'


_warned_paths = set()
_warned_lock = threading.Lock()


def _warn_str_body(environ, charset):
    """One APP_STR_BODY event per path, for the first MAX_WARNED_PATHS paths."""
    path = environ.get('SCRIPT_NAME', '') + environ.get('PATH_INFO', '')
    with _warned_lock:
        if path in _warned_paths or len(_warned_paths) >= MAX_WARNED_PATHS:
            return
        _warned_paths.add(path)
        is_last = len(_warned_paths) == MAX_WARNED_PATHS
    events.emit(events.APP_STR_BODY, path=path, charset=charset, isLastLogged=is_last)


class RequestRunner:
    """Runs requests through the application: called by an executor's thread per request."""

    def __init__(self, app, channel, signals, environ_base, on_done, profiler_dir=None):
        self._app = app
        self._channel = channel
        self._signals = signals
        self._environ_base = environ_base
        self._on_done = on_done
        if profiler_dir:
            from .profiler import profiled
            self._serve = profiled(self._serve, profiler_dir)

    def run(self, exchange):
        """Answer one request; always ends with END or ERROR, unless it was cancelled."""
        try:
            self._serve(exchange)
        finally:
            # Only now may a draining worker exit: a profile has been written by this point.
            self._on_done(exchange)

    def _serve(self, exchange):
        body = exchange.body
        environ = build_environ(exchange.payload, self._environ_base,
                                body if body is not None else io.BytesIO(b''))
        response = exchange.response = Response(exchange, self._channel, self._signals, environ)
        websocket = exchange.websocket
        if websocket is not None:
            websocket.bind(environ)
        try:
            result = self._app(environ, response.start_response)
            try:
                if websocket is None or not websocket.is_accepted:
                    if websocket is not None:
                        websocket.decline()
                    response.send_result(result)
            finally:
                close = getattr(result, 'close', None)
                if close is not None:
                    close()
            if websocket is not None and websocket.is_accepted:
                # What an upgraded application returns is ignored (gevent-websocket); its last word.
                websocket.finish()
                response.is_complete = True
        except BaseException as error:  # noqa: B902 - whatever the app raises, its request gets 500
            # Not the application's: the front closed the channel (sync mode), or the request
            # was interrupted (interrupt.py sends its last word).
            if isinstance(error, (ChannelClosed, RequestCancelled)):
                raise
            # SystemExit, KeyboardInterrupt or an application's own BaseException subclass are
            # the request's failure too: 500 for it, and the worker serves on (exiting would fail
            # the requests of its neighbours).
            self._report(exchange, response, error)

    def _report(self, exchange, response, error):
        if exchange.is_cancelled:
            return  # nothing more goes out for a cancelled request, not even an error
        try:
            lines = traceback.format_exception(type(error), error, error.__traceback__)
        except Exception:  # noqa: B902 - a broken __str__ or traceback must not lose the 500
            lines = ['%s (its traceback could not be formatted)\n' % type(error).__name__]
        trace = ''.join(lines)
        # The traceback is logged once: by the front, in its request.failed line, which carries
        # the request's id, method, path and worker with it (stderr lines would come at info,
        # one log line each, interleaved with other requests' output). Only a traceback the
        # front cannot get goes to stderr: END already went out (close() raised), or the
        # front is gone.
        if not response.is_complete:
            if isinstance(error, BadResponse):
                code, message = ERR_APP_BAD_RESPONSE, str(error)
            else:
                code, message = ERR_APP_EXCEPTION, lines[-1].strip()
            if send_error(self._channel, exchange.request_id, code, message, trace):
                return
        sys.stderr.write(trace[-MAX_TRACEBACK_CHARS:])


def _not_latin1(fields):
    """Which status or header is not latin-1, with its value (gevent names both too): the log line
    must say which header to fix. ``%r`` writes the value escaped, on one line."""
    for index in range(1, len(fields) - 1, 2):
        name, value = fields[index], fields[index + 1]
        try:
            name.encode('latin-1')
            value.encode('latin-1')
        except UnicodeEncodeError:
            return 'header %r: value %r is not a latin-1 string (PEP 3333)' % (name, value)
    return 'status %r is not a latin-1 string (PEP 3333)' % (fields[0],)


def send_error(channel, request_id, code, message, trace=''):
    """An ERROR frame: ``{code, message, traceback}``; a dead channel is not an error here.

    Returns whether the frame was sent.
    """
    if len(message) > MAX_MESSAGE_CHARS:
        message = '%s... (%d more characters)' % (message[:MAX_MESSAGE_CHARS], len(message) - MAX_MESSAGE_CHARS)
    # ASCII JSON: at most 12 bytes per character, so 1 MiB of traceback stays under MAX_PAYLOAD.
    payload = json.dumps({'code': code, 'message': message,
                          'traceback': trace[-MAX_TRACEBACK_CHARS:]}).encode()
    try:
        channel.send(encode_frame(ERROR, 0, request_id, payload))
        return True
    except OSError:
        return False  # the front is gone; the reader sees EOF and the worker exits
