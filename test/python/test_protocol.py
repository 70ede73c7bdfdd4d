"""The frame codec: constants against the spec and TypeScript, the shared vectors in every
chunking, encode/decode round trips, and each protocol error."""

import glob
import json
import os
import random
import re
import struct
import unittest

from worker_harness import REPO
from web2py_on_node_worker import protocol as p

CORPUS = os.path.join(REPO, 'test', 'corpus', 'frames')


def read_hex(path):
    with open(path) as stream:
        text = ''.join(line.split('#', 1)[0] for line in stream)
    return bytes.fromhex(''.join(text.split()))


def vectors():
    for hex_path in sorted(glob.glob(os.path.join(CORPUS, '*.hex'))):
        name = os.path.basename(hex_path)[:-4]
        with open(hex_path[:-4] + '.json') as stream:
            yield name, read_hex(hex_path), json.load(stream)


def decode_in_chunks(data, sizes):
    """Feed ``data`` split at ``sizes`` -> (frames as dicts, error code or None)."""
    decoder = p.Decoder()
    frames = []
    offset = 0
    for size in sizes:
        try:
            frames.extend(decoder.feed(data[offset:offset + size]))
        except p.ProtocolError as error:
            frames.extend(error.frames)
            return [as_dict(frame) for frame in frames], error.code
        offset += size
    return [as_dict(frame) for frame in frames], None


def as_dict(frame):
    frame_type, flags, request_id, payload = frame
    return {'type': p.FRAME_NAMES[frame_type], 'flags': flags, 'id': request_id,
            'payloadHex': payload.hex()}


def without_decoded(frame):
    """A vector's frame without its ``decoded`` payload fields (PayloadVectorsTest reads those)."""
    return {key: value for key, value in frame.items() if key != 'decoded'}


def chunkings(length, seed):
    rng = random.Random(seed)
    yield 'all at once', [length]
    yield 'byte by byte', [1] * length
    for round_number in range(5):
        sizes = []
        left = length
        while left > 0:
            size = min(left, rng.randint(1, 40))
            sizes.append(size)
            left -= size
        yield 'random chunks #%d' % round_number, sizes


class SharedVectorsTest(unittest.TestCase):

    def test_there_are_vectors_for_every_frame_type_and_error(self):
        seen_types = set()
        seen_errors = set()
        for _name, _data, expected in vectors():
            seen_types.update(frame['type'] for frame in expected.get('frames', []))
            if 'error' in expected:
                seen_errors.add(expected['error'])
        self.assertEqual(seen_types, set(p.FRAME_TYPES))
        self.assertEqual(seen_errors, {p.ERR_PROTO_BAD_HEADER, p.ERR_PROTO_TOO_LARGE, p.ERR_PROTO_UNKNOWN_TYPE})

    def test_every_vector_in_every_chunking(self):
        count = 0
        for name, data, expected in vectors():
            for label, sizes in chunkings(len(data), name):
                with self.subTest(vector=name, chunking=label):
                    frames, error = decode_in_chunks(data, sizes)
                    self.assertEqual(frames, [without_decoded(f) for f in expected.get('frames', [])])
                    self.assertEqual(error, expected.get('error'))
            count += 1
        self.assertGreaterEqual(count, 12)

    def test_vectors_re_encode_to_the_same_bytes(self):
        for name, data, expected in vectors():
            if 'error' in expected or not expected.get('frames'):
                continue
            with self.subTest(vector=name):
                encoded = b''.join(
                    p.encode_frame(p.FRAME_TYPES[f['type']], f['flags'], f['id'], bytes.fromhex(f['payloadHex']))
                    for f in expected['frames'])
                self.assertEqual(encoded, data)


class PayloadVectorsTest(unittest.TestCase):
    """The ``decoded`` fields of the shared vectors, read with this codec's payload helpers (the
    TypeScript decoders in src/protocol/payloads.ts read the same: test/unit/payloads.test.ts)."""

    def decoded(self, frame_type, payload):
        if frame_type == 'REQUEST':
            return {'strings': p.decode_strings(payload)}
        if frame_type == 'RESPONSE':
            strings, body = p.split_response(payload)
            code, _space, reason = strings[0].partition(' ')
            return {'statusCode': int(code), 'reason': reason, 'headers': strings[1:], 'bodyHex': body.hex()}
        if frame_type == 'SENDFILE':
            fd, offset, length = p.decode_sendfile(payload)
            return {'fd': fd, 'offset': offset, 'length': length}
        if frame_type == 'CREDIT':
            return {'bytes': p.decode_u32(payload)}
        if frame_type == 'WS_ACCEPT':
            return {'protocol': payload.decode('latin-1') or None}
        if frame_type == 'WS_CLOSE':
            code, reason = p.decode_ws_close(payload)
            return {'code': code, 'reason': reason}
        if frame_type == 'FILE_OPENED':
            return {'opened': payload == b'\x01'}
        if frame_type == 'PUBLISH':
            size = payload[0]
            return {'group': payload[1:1 + size].decode('utf-8'), 'message': payload[1 + size:].decode('utf-8')}
        return json.loads(payload.decode('utf-8'))  # ERROR, READY

    def test_payloads_decode_to_their_fields(self):
        count = 0
        for name, _data, expected in vectors():
            for index, frame in enumerate(expected.get('frames', [])):
                if 'decoded' not in frame or 'error' in frame['decoded']:
                    continue  # refusals are the front's to make (these helpers serve the tests)
                with self.subTest(vector=name, frame=index):
                    self.assertEqual(self.decoded(frame['type'], bytes.fromhex(frame['payloadHex'])), frame['decoded'])
                    count += 1
        self.assertGreaterEqual(count, 8)


class BodyFileTest(unittest.TestCase):
    """BODY_FILE as the front encodes it (the shared vector) and FILE_OPENED as the worker answers."""

    def test_body_file_vector(self):
        frames = p.Decoder().feed(read_hex(os.path.join(CORPUS, 'body-file.hex')))
        self.assertEqual(p.decode_body_file(frames[0][3]), (4242, 23, 2 ** 32 + 5, 0x803, 2 ** 40 + 7))
        self.assertEqual(p.encode_body_file(9, 4242, 23, 2 ** 32 + 5, 0x803, 2 ** 40 + 7),
                         p.encode_frame(p.BODY_FILE, 0, 9, frames[0][3]))
        self.assertEqual(p.encode_file_opened(9, False), p.encode_frame(p.FILE_OPENED, 0, 9, frames[1][3]))
        self.assertEqual(p.encode_file_opened(9, True)[-1:], b'\x01')

    def test_body_file_payload_of_another_size_is_refused(self):
        self.assertIsNone(p.decode_body_file(b'\x00' * 31))
        self.assertIsNone(p.decode_body_file(b'\x00' * 33))


class PublishTest(unittest.TestCase):
    """PUBLISH as the application's publish() sends it (realtime.py), against the shared vector."""

    def test_encoded_as_the_vector(self):
        with open(os.path.join(CORPUS, 'publish.json')) as stream:
            frame = json.load(stream)['frames'][0]
        expected = p.encode_frame(p.PUBLISH, 0, 0, bytes.fromhex(frame['payloadHex']))
        self.assertEqual(p.encode_publish('chat'.encode(), 'h\u00e9llo'.encode()), expected)

    def test_group_bounds(self):
        for group in (b'', b'g' * 256):
            with self.assertRaises(ValueError):
                p.encode_publish(group, b'x')


class ConstantsTest(unittest.TestCase):
    """protocol.py, src/protocol/frames.ts and docs/protocol.md state the same facts."""

    def test_frame_types_match_typescript(self):
        with open(os.path.join(REPO, 'src', 'protocol', 'frames.ts')) as stream:
            source = stream.read()
        block = re.search(r'export const FrameType = \{(.*?)\}', source, re.S).group(1)
        types = {name: int(code, 16) for name, code in re.findall(r'(\w+): (0x[0-9a-fA-F]+)', block)}
        self.assertEqual(types, p.FRAME_TYPES)
        for name in p.FRAME_TYPES:
            self.assertEqual(getattr(p, name), p.FRAME_TYPES[name])

    def test_limits_match_typescript(self):
        with open(os.path.join(REPO, 'src', 'protocol', 'frames.ts')) as stream:
            source = stream.read()
        for name in ('PROTOCOL_VERSION', 'HEADER_BYTES', 'MAX_PAYLOAD', 'MAX_CHUNK', 'FLAG_END', 'FLAG_TIMEOUT',
                     'FLAG_UPGRADE', 'FLAG_BINARY'):
            with self.subTest(name=name):
                expression = re.search(r'export const %s = ([^;]+);' % name, source).group(1)
                self.assertRegex(expression, r'^[0-9x*\sA-Fa-f]+$')
                self.assertEqual(eval(expression), getattr(p, name))  # noqa: S307 - digits and * only

    def test_frame_types_match_the_spec(self):
        with open(os.path.join(REPO, 'docs', 'protocol.md')) as stream:
            spec = stream.read()
        rows = dict((name, int(code, 16)) for code, name in re.findall(r'^\| (0x[0-9a-f]{2}) \| `(\w+)` \|', spec, re.M))
        self.assertEqual(rows, p.FRAME_TYPES)
        limits = dict((name, int(value.replace(',', ''))) for name, value in
                      re.findall(r'^\| `(\w+)` \| ([0-9,]+) \|', spec, re.M))
        self.assertEqual(limits, {'HEADER_BYTES': p.HEADER_BYTES, 'MAX_PAYLOAD': p.MAX_PAYLOAD,
                                  'MAX_CHUNK': p.MAX_CHUNK, 'PROTOCOL_VERSION': p.PROTOCOL_VERSION})

    def test_error_codes_exist_in_the_error_table(self):
        with open(os.path.join(REPO, 'src', 'errors', 'index.ts')) as stream:
            table = set(re.findall(r'^\s+(W2N_ERR_\w+): \{', stream.read(), re.M))
        codes = {value for name, value in vars(p).items() if name.startswith('ERR_')}
        self.assertTrue(codes)
        self.assertEqual(codes - table, set())


class CodecTest(unittest.TestCase):

    def test_round_trip_of_every_type(self):
        frames = [(code, index % 2, index * 1000 + 1, bytes([index]) * index)
                  for index, code in enumerate(sorted(p.FRAME_NAMES))]
        data = b''.join(p.encode_frame(*frame) for frame in frames)
        self.assertEqual(p.Decoder().feed(data), frames)

    def test_header_layout(self):
        self.assertEqual(p.encode_frame(p.REQUEST, p.FLAG_END, 0x01020304, b'ab'),
                         bytes.fromhex('1001 0000 01020304 00000002 6162'))

    def test_decoder_keeps_partial_frames_and_counts_buffered_bytes(self):
        decoder = p.Decoder()
        data = p.encode_frame(p.BODY, 0, 5, b'x' * 100)
        self.assertEqual(decoder.feed(data[:7]), [])
        self.assertEqual(decoder.buffered_bytes, 7)
        self.assertEqual(decoder.feed(data[7:50]), [])
        self.assertEqual(decoder.feed(memoryview(data)[50:]), [(p.BODY, 0, 5, b'x' * 100)])
        self.assertEqual(decoder.buffered_bytes, 0)

    def test_payloads_are_bytes_copied_out_of_the_input(self):
        buffer = bytearray(p.encode_frame(p.BODY, 0, 1, b'abc') + p.encode_frame(p.BODY, 0, 1, b'de')[:5])
        frames = p.Decoder().feed(memoryview(buffer))
        buffer[12:15] = b'zzz'
        self.assertEqual(frames, [(p.BODY, 0, 1, b'abc')])
        self.assertIs(type(frames[0][3]), bytes)

    def test_random_frames_in_random_chunks(self):
        rng = random.Random(7)
        frames = [(rng.choice(sorted(p.FRAME_NAMES)), rng.randint(0, 1), rng.randint(0, 2 ** 32 - 1),
                   bytes(rng.getrandbits(8) for _ in range(rng.choice((0, 1, 11, 12, 13, 300)))))
                  for _ in range(200)]
        data = b''.join(p.encode_frame(*frame) for frame in frames)
        decoder = p.Decoder()
        decoded = []
        offset = 0
        while offset < len(data):
            size = rng.randint(1, 700)
            decoded.extend(decoder.feed(data[offset:offset + size]))
            offset += size
        self.assertEqual(decoded, frames)

    def test_strings_and_pairs(self):
        payload = p.encode_strings(['PATH_INFO', '/caf\xe9', 'EMPTY', ''])
        self.assertEqual(payload, b'PATH_INFO\x00/caf\xe9\x00EMPTY\x00')
        self.assertEqual(p.decode_strings(payload), ['PATH_INFO', '/caf\xe9', 'EMPTY', ''])
        self.assertEqual(p.decode_pairs(payload), {'PATH_INFO': '/caf\xe9', 'EMPTY': ''})
        self.assertEqual(p.decode_strings(b''), [])
        self.assertEqual(p.decode_pairs(b''), {})

    def test_response_sendfile_and_credit_payloads(self):
        head = p.encode_strings(['200 OK', 'A', 'b'])
        frame = p.encode_response(p.FLAG_END, 3, head, b'body')
        (frame_type, flags, request_id, payload), = p.Decoder().feed(frame)
        self.assertEqual((frame_type, flags, request_id), (p.RESPONSE, p.FLAG_END, 3))
        self.assertEqual(p.split_response(payload), (['200 OK', 'A', 'b'], b'body'))
        prefix = p.encode_response_prefix(0, 3, len(head), 4)
        self.assertEqual(prefix + head + b'body', p.encode_response(0, 3, head, b'body'))
        (_, flags, _, payload), = p.Decoder().feed(p.encode_sendfile(4, 9, 2 ** 40, 5))
        self.assertEqual((flags, p.decode_sendfile(payload)), (p.FLAG_END, (9, 2 ** 40, 5)))
        (_, _, _, payload), = p.Decoder().feed(p.encode_credit(4, 65536))
        self.assertEqual(p.decode_u32(payload), 65536)

    def test_encoding_refuses_oversized_payloads(self):
        with self.assertRaises(ValueError):
            p.encode_header(p.BODY, 0, 1, p.MAX_PAYLOAD + 1)
        with self.assertRaises(ValueError):
            p.encode_response(0, 1, b'h' * 10, b'x' * (p.MAX_PAYLOAD - 10))


class HandshakeTest(unittest.TestCase):
    """decode_handshake: exactly HANDSHAKE_KEYS, or one clear ProtocolError (never a default)."""

    def vector(self):
        with open(os.path.join(CORPUS, 'handshake.json')) as stream:
            return json.loads(bytes.fromhex(json.load(stream)['frames'][0]['payloadHex']))

    def assert_refused(self, handshake, code, *words):
        with self.assertRaises(p.ProtocolError) as caught:
            p.decode_handshake(json.dumps(handshake).encode())
        self.assertEqual(caught.exception.code, code)
        self.assertNotIn('\n', caught.exception.message)
        for word in words:
            self.assertIn(word, caught.exception.message)

    def test_the_shared_vector_decodes(self):
        handshake = self.vector()
        self.assertEqual(sorted(handshake), sorted(p.HANDSHAKE_KEYS))
        self.assertEqual(p.decode_handshake(json.dumps(handshake).encode()), handshake)

    def test_an_unknown_key_is_refused(self):
        self.assert_refused(dict(self.vector(), threadz=8), p.ERR_PROTO_UNEXPECTED, 'unknown keys threadz')

    def test_a_missing_key_is_refused(self):
        handshake = self.vector()
        del handshake['responseWindow']
        self.assert_refused(handshake, p.ERR_PROTO_UNEXPECTED, 'lacks keys responseWindow')

    def test_a_renamed_key_names_both(self):
        handshake = self.vector()
        handshake['worker_class'] = handshake.pop('workerClass')
        self.assert_refused(handshake, p.ERR_PROTO_UNEXPECTED, 'unknown keys worker_class', 'lacks keys workerClass')

    def test_values_of_the_wrong_type_are_refused(self):
        for key, value in (('threads', 0), ('threads', '8'), ('threads', True), ('requestWindow', None),
                           ('workerClass', 1), ('profilerDir', ''), ('app', 'hello:app'), ('workerId', -1)):
            with self.subTest(key=key, value=value):
                self.assert_refused(dict(self.vector(), **{key: value}), p.ERR_PROTO_UNEXPECTED, key)

    def test_another_version_is_refused_before_its_keys_are_read(self):
        self.assert_refused({'protocol': 2, 'other': 1}, p.ERR_PROTO_VERSION, 'protocol 1')

    def test_not_json_or_not_an_object(self):
        for payload in (b'{', b'[1]', b'\xff'):
            with self.subTest(payload=payload), self.assertRaises(p.ProtocolError) as caught:
                p.decode_handshake(payload)
            self.assertEqual(caught.exception.code, p.ERR_PROTO_UNEXPECTED)


class DecoderErrorsTest(unittest.TestCase):

    def assert_error(self, data, code, frames_before=0):
        decoder = p.Decoder()
        with self.assertRaises(p.ProtocolError) as caught:
            decoder.feed(data)
        self.assertEqual(caught.exception.code, code)
        self.assertEqual(len(caught.exception.frames), frames_before)
        # The decoder stays failed: the channel must be closed.
        with self.assertRaises(p.ProtocolError) as again:
            decoder.feed(p.encode_frame(p.PING, 0, 0))
        self.assertEqual(again.exception.code, code)

    def test_reserved_field_must_be_zero(self):
        self.assert_error(struct.pack('>BBHII', p.CANCEL, 0, 1, 1, 0), p.ERR_PROTO_BAD_HEADER)

    def test_unknown_type(self):
        good = p.encode_frame(p.PING, 0, 0, b'1')
        self.assert_error(good + struct.pack('>BBHII', 0x7f, 0, 0, 1, 0), p.ERR_PROTO_UNKNOWN_TYPE, 1)

    def test_too_large_is_seen_in_the_header_alone(self):
        self.assert_error(struct.pack('>BBHII', p.BODY, 0, 0, 1, p.MAX_PAYLOAD + 1), p.ERR_PROTO_TOO_LARGE)

    def test_max_payload_itself_is_accepted(self):
        decoder = p.Decoder()
        self.assertEqual(decoder.feed(struct.pack('>BBHII', p.BODY, 0, 0, 1, p.MAX_PAYLOAD)), [])

    def test_smaller_limit(self):
        decoder = p.Decoder(max_payload=10)
        with self.assertRaises(p.ProtocolError) as caught:
            decoder.feed(p.encode_frame(p.BODY, 0, 1, b'x' * 11))
        self.assertEqual(caught.exception.code, p.ERR_PROTO_TOO_LARGE)

    def test_error_detected_in_a_later_chunk(self):
        decoder = p.Decoder()
        bad = struct.pack('>BBHII', p.BODY, 0, 9, 1, 0)
        self.assertEqual(decoder.feed(p.encode_frame(p.PING, 0, 0) + bad[:5]), [(p.PING, 0, 0, b'')])
        with self.assertRaises(p.ProtocolError) as caught:
            decoder.feed(bad[5:])
        self.assertEqual(caught.exception.code, p.ERR_PROTO_BAD_HEADER)


if __name__ == '__main__':
    unittest.main()


class WebSocketFramesTest(unittest.TestCase):
    """The worker's WebSocket frames are encoded as the shared vector (websocket.hex) has them."""

    def test_ws_close_and_accept_match_the_vector(self):
        with open(os.path.join(CORPUS, 'websocket.json')) as stream:
            frames = json.load(stream)['frames']
        by_comment = {(f['type'], f['flags']): f for f in frames}
        close = by_comment[('WS_CLOSE', 0)]
        expected = p.encode_frame(p.WS_CLOSE, 0, close['id'], bytes.fromhex(close['payloadHex']))
        self.assertEqual(p.encode_ws_close(0, close['id'], 4000, b'bye'), expected)
        last = by_comment[('WS_CLOSE', p.FLAG_END)]
        self.assertEqual(p.encode_ws_close(p.FLAG_END, last['id'], 1000),
                         p.encode_frame(p.WS_CLOSE, p.FLAG_END, last['id'], bytes.fromhex(last['payloadHex'])))
        self.assertEqual(p.decode_ws_close(b''), (1005, ''))
