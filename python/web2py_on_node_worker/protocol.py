"""The front <-> worker frame codec: constants and pure byte functions, no I/O.

This mirrors docs/protocol.md (the specification) and src/protocol/frames.ts; a test checks
that the three agree. Every frame is a 12-byte header then a payload::

     0       1       2               4                               8                              12
    +-------+-------+---------------+-------------------------------+-------------------------------+
    | type  | flags |   reserved    |          request id           |        payload length         |
    |  u8   |  u8   |  u16, must 0  |            u32 BE             |     u32 BE, <= MAX_PAYLOAD    |
    +-------+-------+---------------+-------------------------------+-------------------------------+

Frame types are plain ints with the same UPPER_SNAKE names as the TypeScript side; decoded frames
are plain ``(type, flags, id, payload)`` tuples so that the hot path allocates nothing else.

Payload codecs: the worker decodes what the front sends (``decode_handshake``, ``decode_pairs``
for REQUEST, ``decode_u32`` for CREDIT, ``decode_body_file`` for BODY_FILE) and encodes what it sends. The decoders of frames only
the front receives (``decode_strings``, ``split_response``, ``decode_sendfile``) are the
inverses of the worker's encoders: the tests' fake front (test/python/worker_harness.py) and the
shared test vectors use them; the worker itself never receives those frames.
"""

import json
import struct

PROTOCOL_VERSION = 1
HEADER_BYTES = 12
#: Largest payload a decoder accepts; bounds its buffer.
MAX_PAYLOAD = 16 * 1024 * 1024
#: Largest body chunk either side puts in one frame.
MAX_CHUNK = 256 * 1024

#: Flag bit 0: the last frame of this direction of this request.
FLAG_END = 0x01
#: Flag bit 1, on CANCEL only: the request ran past the front's deadline (``--timeout``); the
#: worker raises RequestTimeout inside the request's thread or greenlet (see interrupt.py).
FLAG_TIMEOUT = 0x02
#: Flag bit 2, on REQUEST: a valid WebSocket handshake the front can complete (wsgi.websocket).
FLAG_UPGRADE = 0x04
#: Flag bit 2, on WS_MESSAGE: a binary message (else text, UTF-8).
FLAG_BINARY = 0x04

HANDSHAKE = 0x01
READY = 0x02
SHUTDOWN = 0x03
PING = 0x04
PONG = 0x05
REQUEST = 0x10
BODY = 0x11
CANCEL = 0x12
CREDIT = 0x13
BODY_FILE = 0x14
RESPONSE = 0x20
RESPONSE_BODY = 0x21
SENDFILE = 0x22
FILE_OPENED = 0x23
ERROR = 0x24
WS_ACCEPT = 0x30
WS_MESSAGE = 0x31
WS_CLOSE = 0x32
PUBLISH = 0x40

#: name -> code, for tests, logs and the shared test vectors.
FRAME_TYPES = {
    'HANDSHAKE': HANDSHAKE, 'READY': READY, 'SHUTDOWN': SHUTDOWN, 'PING': PING, 'PONG': PONG,
    'REQUEST': REQUEST, 'BODY': BODY, 'CANCEL': CANCEL, 'CREDIT': CREDIT, 'BODY_FILE': BODY_FILE,
    'RESPONSE': RESPONSE, 'RESPONSE_BODY': RESPONSE_BODY, 'SENDFILE': SENDFILE,
    'FILE_OPENED': FILE_OPENED, 'ERROR': ERROR,
    'WS_ACCEPT': WS_ACCEPT, 'WS_MESSAGE': WS_MESSAGE, 'WS_CLOSE': WS_CLOSE, 'PUBLISH': PUBLISH,
}
FRAME_NAMES = {code: name for name, code in FRAME_TYPES.items()}

#: The keys of HANDSHAKE's JSON object: every one required, no other allowed (docs/protocol.md).
#: The same list as HANDSHAKE_KEYS in src/protocol/frames.ts (test/unit/protocol-constants.test.ts).
HANDSHAKE_KEYS = ('protocol', 'workerId', 'app', 'threads', 'workerClass', 'requestWindow',
                  'responseWindow', 'profilerDir', 'realtimeMaxMessage')

# Error codes this worker reports (declared in src/errors/index.ts; a test checks they exist there).
ERR_PROTO_BAD_HEADER = 'W2N_ERR_PROTO_BAD_HEADER'
ERR_PROTO_TOO_LARGE = 'W2N_ERR_PROTO_TOO_LARGE'
ERR_PROTO_UNKNOWN_TYPE = 'W2N_ERR_PROTO_UNKNOWN_TYPE'
ERR_PROTO_VERSION = 'W2N_ERR_PROTO_VERSION'
ERR_PROTO_UNEXPECTED = 'W2N_ERR_PROTO_UNEXPECTED'
ERR_APP_IMPORT = 'W2N_ERR_APP_IMPORT'
ERR_APP_EXCEPTION = 'W2N_ERR_APP_EXCEPTION'
ERR_APP_BAD_RESPONSE = 'W2N_ERR_APP_BAD_RESPONSE'
ERR_NOT_READY = 'W2N_ERR_NOT_READY'
#: the last word on a request cancelled with FLAG_TIMEOUT: its slot in the worker is free again
ERR_WORKER_TIMEOUT = 'W2N_ERR_WORKER_TIMEOUT'
ERR_REQUEST_CANCELLED = 'W2N_ERR_REQUEST_CANCELLED'

_HEADER = struct.Struct('>BBHII')
#: A RESPONSE frame's header plus the u32 head length that opens its payload: one pack() call.
_RESPONSE_HEADER = struct.Struct('>BBHIII')
_U32 = struct.Struct('>I')
_SENDFILE = struct.Struct('>IQQ')
#: BODY_FILE: u32 pid, u32 fd, u64 length, u64 device, u64 inode
_BODY_FILE = struct.Struct('>IIQQQ')
_U16 = struct.Struct('>H')
#: RFC 6455 section 5.5: a close frame's payload is at most 125 bytes, 2 of them the code.
MAX_CLOSE_REASON_BYTES = 123


class ProtocolError(Exception):
    """Bad bytes on the channel. ``code`` is a W2N_ERR_PROTO_* code; ``frames`` holds the frames
    that were complete before the bad header in the same ``feed()`` call."""

    def __init__(self, code, message, frames=()):
        super().__init__('%s: %s' % (code, message))
        self.code = code
        self.message = message
        self.frames = list(frames)


def encode_header(frame_type, flags, request_id, payload_bytes):
    """The 12 header bytes alone, for a writer that sends header and payload separately."""
    if payload_bytes > MAX_PAYLOAD:
        raise ValueError('payload of %d bytes exceeds %d' % (payload_bytes, MAX_PAYLOAD))
    return _HEADER.pack(frame_type, flags, 0, request_id, payload_bytes)


def encode_frame(frame_type, flags, request_id, payload=b''):
    """One whole frame as bytes."""
    return encode_header(frame_type, flags, request_id, len(payload)) + payload


def encode_response(flags, request_id, head, body=b''):
    """A RESPONSE frame: u32 head length, the encoded head, then inline body bytes."""
    payload_bytes = 4 + len(head) + len(body)
    if payload_bytes > MAX_PAYLOAD:
        raise ValueError('response head and body of %d bytes exceed %d' % (payload_bytes, MAX_PAYLOAD))
    return _RESPONSE_HEADER.pack(RESPONSE, flags, 0, request_id, payload_bytes, len(head)) + head + body


def encode_response_prefix(flags, request_id, head_bytes, body_bytes):
    """The first 16 bytes of a RESPONSE frame (header, u32 head length), to send with
    the head and body pieces without joining them."""
    payload_bytes = 4 + head_bytes + body_bytes
    if payload_bytes > MAX_PAYLOAD:
        raise ValueError('response head and body of %d bytes exceed %d' % (payload_bytes, MAX_PAYLOAD))
    return _RESPONSE_HEADER.pack(RESPONSE, flags, 0, request_id, payload_bytes, head_bytes)


def encode_credit(request_id, byte_count):
    return _HEADER.pack(CREDIT, 0, 0, request_id, 4) + _U32.pack(byte_count)


def decode_u32(payload):
    """A CREDIT payload (u32 BE) as an int."""
    return _U32.unpack_from(payload)[0]


def encode_sendfile(request_id, fd, offset, length):
    return _HEADER.pack(SENDFILE, FLAG_END, 0, request_id, _SENDFILE.size) + _SENDFILE.pack(fd, offset, length)


def decode_sendfile(payload):
    """-> (fd, offset, length)"""
    return _SENDFILE.unpack_from(payload)


def encode_body_file(request_id, pid, fd, length, dev, ino):
    """BODY_FILE (the front's; for tests): the body is ``length`` bytes of /proc/<pid>/fd/<fd>,
    the file with that device and inode."""
    return _HEADER.pack(BODY_FILE, 0, 0, request_id, _BODY_FILE.size) + _BODY_FILE.pack(pid, fd, length, dev, ino)


def decode_body_file(payload):
    """-> (pid, fd, length, dev, ino), or None when the payload breaks the layout."""
    if len(payload) != _BODY_FILE.size:
        return None
    return _BODY_FILE.unpack(payload)


def encode_file_opened(request_id, is_open):
    """FILE_OPENED: one byte, 1 opened, 0 not (the worker's answer to BODY_FILE)."""
    return _HEADER.pack(FILE_OPENED, 0, 0, request_id, 1) + (b'\x01' if is_open else b'\x00')


def encode_ws_close(flags, request_id, code, reason=b''):
    """WS_CLOSE: u16 close code, then the UTF-8 reason (at most MAX_CLOSE_REASON_BYTES)."""
    return _HEADER.pack(WS_CLOSE, flags, 0, request_id, 2 + len(reason)) + _U16.pack(code) + reason


def encode_publish(group, message):
    """PUBLISH (id 0): u8 group length, the UTF-8 group (1-255 bytes), then the UTF-8 message."""
    if not 1 <= len(group) <= 255:
        raise ValueError('a group is 1 to 255 bytes of UTF-8, not %d' % len(group))
    return _HEADER.pack(PUBLISH, 0, 0, 0, 1 + len(group) + len(message)) + bytes((len(group),)) + group + message


def decode_ws_close(payload):
    """A WS_CLOSE payload -> (code, reason str). An empty payload is 1005 (no status received)."""
    if len(payload) < 2:
        return 1005, ''
    return _U16.unpack_from(payload)[0], bytes(payload[2:]).decode('utf-8', 'replace')


def encode_strings(strings):
    """NUL-separated latin-1 strings (request environ pairs, response heads)."""
    return '\0'.join(strings).encode('latin-1')


def decode_strings(payload):
    """The inverse of encode_strings; an empty payload is an empty list (as in the TS codec)."""
    return payload.decode('latin-1').split('\0') if payload else []


def decode_handshake(payload):
    """A HANDSHAKE payload -> its dict, with exactly HANDSHAKE_KEYS and values of the right types.

    Raises ProtocolError with one line: W2N_ERR_PROTO_VERSION for another protocol version, else
    W2N_ERR_PROTO_UNEXPECTED. A key this worker does not know, or one it misses, is an error and
    never a silent default: it means the front and the worker disagree on docs/protocol.md.
    """
    try:
        handshake = json.loads(bytes(payload).decode('utf-8'))
    except ValueError as error:
        raise ProtocolError(ERR_PROTO_UNEXPECTED, 'unreadable HANDSHAKE: %s' % error) from None
    if not isinstance(handshake, dict):
        raise ProtocolError(ERR_PROTO_UNEXPECTED, 'HANDSHAKE is not a JSON object')
    if handshake.get('protocol') != PROTOCOL_VERSION:
        raise ProtocolError(ERR_PROTO_VERSION, 'worker speaks protocol %d, front speaks %s'
                            % (PROTOCOL_VERSION, handshake.get('protocol')))
    problems = []
    unknown = sorted(key for key in handshake if key not in HANDSHAKE_KEYS)
    if unknown:
        problems.append('has unknown keys %s' % ', '.join(unknown))
    missing = [key for key in HANDSHAKE_KEYS if key not in handshake]
    if missing:
        problems.append('lacks keys %s' % ', '.join(missing))
    if problems:
        raise ProtocolError(ERR_PROTO_UNEXPECTED, 'HANDSHAKE %s: the front and this worker disagree on'
                            ' docs/protocol.md (are they from one release?)' % '; '.join(problems))
    for key, is_valid, expected in _HANDSHAKE_VALUES:
        if not is_valid(handshake[key]):
            raise ProtocolError(ERR_PROTO_UNEXPECTED, 'HANDSHAKE %s is %s, not %s'
                                % (key, json.dumps(handshake[key])[:100], expected))
    return handshake


def _is_count(value):
    return value.__class__ is int and value >= 1


#: (key, check, what it should be) for the HANDSHAKE values the worker reads
_HANDSHAKE_VALUES = (
    ('workerId', lambda value: value.__class__ is int and value >= 0, 'an integer >= 0'),
    ('app', lambda value: isinstance(value, dict) and isinstance(value.get('kind'), str),
     'an object with a "kind"'),
    ('threads', _is_count, 'an integer >= 1'),
    ('workerClass', lambda value: isinstance(value, str), 'a string'),
    ('requestWindow', _is_count, 'an integer >= 1'),
    ('responseWindow', _is_count, 'an integer >= 1'),
    ('profilerDir', lambda value: value is None or (isinstance(value, str) and value != ''),
     'null or a folder'),
    ('realtimeMaxMessage', lambda value: value.__class__ is int and value >= 0, 'an integer >= 0'),
)


def decode_pairs(payload):
    """``k1 NUL v1 NUL k2 NUL v2 ...`` -> dict, in one C-level split."""
    if not payload:
        return {}
    items = iter(payload.decode('latin-1').split('\0'))
    return dict(zip(items, items))


def split_response(payload):
    """A RESPONSE payload -> (head strings, inline body bytes)."""
    head_bytes = _U32.unpack_from(payload)[0]
    return decode_strings(payload[4:4 + head_bytes]), payload[4 + head_bytes:]


class Decoder:
    """Incremental frame decoder: ``feed(data)`` any split of the stream, get whole frames.

    Frames within one fed chunk are sliced straight out of it (one copy per payload); only an
    incomplete tail is kept, and a frame split across chunks is joined when complete. Headers are
    checked as soon as their 12 bytes arrive, in this order: reserved field, type, length. After
    an error the decoder stays failed: the channel must be closed.
    """

    __slots__ = ('_pending', '_needed', '_max_payload', 'error')

    def __init__(self, max_payload=MAX_PAYLOAD):
        self._pending = bytearray()
        #: bytes the pending tail must reach before it can yield a frame or a verdict
        self._needed = HEADER_BYTES
        self._max_payload = max_payload
        self.error = None

    @property
    def buffered_bytes(self):
        return len(self._pending)

    def feed(self, data):
        """Decode ``data`` (bytes, bytearray or memoryview) -> list of (type, flags, id, payload)."""
        if self.error is not None:
            raise self.error
        if self._pending:
            pending = self._pending
            pending += data
            if len(pending) < self._needed:
                return []
            self._pending = bytearray()
            data = pending
        # Slicing a memoryview is free, so bytes(view[a:b]) copies each payload exactly once.
        view = memoryview(data)
        frames = []
        total = len(view)
        offset = 0
        unpack_from = _HEADER.unpack_from
        known = FRAME_NAMES
        max_payload = self._max_payload
        while total - offset >= HEADER_BYTES:
            frame_type, flags, reserved, request_id, length = unpack_from(view, offset)
            if reserved:
                self._fail(ERR_PROTO_BAD_HEADER, 'reserved field is %d, must be 0' % reserved, frames)
            if frame_type not in known:
                self._fail(ERR_PROTO_UNKNOWN_TYPE, 'unknown frame type 0x%02x' % frame_type, frames)
            if length > max_payload:
                self._fail(ERR_PROTO_TOO_LARGE,
                           'frame payload of %d bytes exceeds %d' % (length, max_payload), frames)
            end = offset + HEADER_BYTES + length
            if end > total:
                self._needed = HEADER_BYTES + length
                break
            frames.append((frame_type, flags, request_id, bytes(view[offset + HEADER_BYTES:end])))
            offset = end
        else:
            self._needed = HEADER_BYTES
        if offset < total:
            self._pending = bytearray(view[offset:])
        return frames

    def _fail(self, code, message, frames):
        self._pending = bytearray()
        self.error = ProtocolError(code, message)
        raise ProtocolError(code, message, frames)
