/**
 * TLS cases, written raw to the TLS port: garbage and truncated handshake records, mutated
 * ClientHellos, plain HTTP and the h2 preface where a handshake is due, and slow handshakes (a few
 * bytes, then a stall while the harness checks that others are still answered).
 */
import type { Rng } from './prng.js';
import type { Case } from './case.js';
import { byteMutate, splitWrites } from './gen-h1.js';
import { preface } from './gen-h2.js';

/** A ClientHello of Node 20 (SNI localhost, ALPN h2 and http/1.1), captured once, so cases are reproducible. */
export const CLIENT_HELLO = Buffer.from('160301017c0100017803033408bca6e6d292d26326f872ac399e7299a2aa4993c96c0b9171bf64756dcf4620fce733237a436735133a1044a0dd5694250bfeccf1437a89978ab71889b097cf0076130213031301c02fc02bc030c02c009ec0270067c028006b00a3009fcca9cca8ccaac0afc0adc0a3c09fc05dc061c057c05300a2c0aec0acc0a2c09ec05cc060c056c052c024006ac0230040c00ac01400390038c009c01300330032009dc0a1c09dc051009cc0a0c09cc050003d003c0035002f00ff010000b90000000e000c0000096c6f63616c686f7374000b000403000102000a00160014001d0017001e0019001801000101010201030104002300000010000e000c02683208687474702f312e310016000000170000000d002a0028040305030603080708080809080a080b080408050806040105010601030303010302040205020602002b00050403040303002d00020101003300260024001d0020bdaddde4f5b0746435809a6c664c0e38a402af73b3ab91cd50797a4cbd479e45', 'hex');

function record(type: number, version: number, payload: Buffer, length = payload.length): Buffer {
  const head = Buffer.alloc(5);
  head[0] = type;
  head.writeUInt16BE(version, 1);
  head.writeUInt16BE(length & 0xffff, 3);
  return Buffer.concat([head, payload]);
}

type Scenario = (rng: Rng) => Buffer;

const scenarios: Record<string, Scenario> = {
  garbage: (rng) => rng.bytes(rng.range(1, 3000)),
  garbageRecord: (rng) => record(rng.pick([0x14, 0x15, 0x16, 0x17, 0x18, 0x00, 0xff]), rng.pick([0x0301, 0x0303, 0x0300, 0x0304, 0x0200, 0xffff]), rng.bytes(rng.range(0, 600))),
  lyingLength: (rng) => record(0x16, 0x0301, rng.bytes(rng.range(0, 100)), rng.pick([0, 1, 0x4000, 0x4001, 0x4800, 0xffff])),
  truncatedHello: (rng) => CLIENT_HELLO.subarray(0, rng.range(1, CLIENT_HELLO.length - 1)),
  mutatedHello: (rng) => byteMutate(rng, CLIENT_HELLO, []),
  helloFieldLengths: (rng) => {
    const hello = Buffer.from(CLIENT_HELLO);
    // Handshake length (3 bytes at 6), session id length (at 43), then random offsets of length-ish fields.
    const at = rng.pick([6, 7, 8, 43, 44, 45, 76, 77, rng.range(5, hello.length - 2)]);
    hello[at] = rng.pick([0x00, 0xff, 0x7f, 0x80, hello[at]! + 1, hello[at]! - 1]) & 0xff;
    return hello;
  },
  twoHellos: () => Buffer.concat([CLIENT_HELLO, CLIENT_HELLO]),
  helloThenGarbage: (rng) => Buffer.concat([CLIENT_HELLO, rng.bytes(rng.range(1, 500))]),
  fragmentedHello: (rng) => {
    // The ClientHello body split across several handshake records (legal), or sizes that lie.
    const body = CLIENT_HELLO.subarray(5);
    const out: Buffer[] = [];
    for (let at = 0; at < body.length;) {
      const n = rng.range(1, 100);
      out.push(record(0x16, 0x0301, body.subarray(at, at + n)));
      at += n;
    }
    if (rng.chance(0.3)) out.splice(rng.int(out.length), 0, record(rng.pick([0x15, 0x17, 0x14]), 0x0303, rng.bytes(rng.range(0, 20))));
    return Buffer.concat(out);
  },
  sslv2: (rng) => Buffer.concat([Buffer.from([0x80, rng.int(256), 0x01, 0x00, 0x02]), rng.bytes(rng.range(0, 100))]),
  plaintext: (rng) => Buffer.from(rng.pick(['GET / HTTP/1.1\r\nHost: a\r\n\r\n', 'GET / HTTP/2.0\r\nHost: a\r\n\r\n', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', '\r\n\r\n', 'GET /\r\n']), 'latin1'),
  h2Preface: () => preface(),
  alert: (rng) => record(0x15, 0x0303, Buffer.from([rng.pick([1, 2]), rng.int(256)])),
  empty: () => Buffer.alloc(0),
};

export function generateTls(rng: Rng, klass: string): Case {
  const name = rng.pick(Object.keys(scenarios));
  const notes = [name];
  const bytes = scenarios[name]!(rng);
  const writes = bytes.length === 0 ? [] : splitWrites(rng, bytes, notes);
  const stall = rng.chance(0.04);
  if (stall) notes.push('stall');
  const end = !stall && rng.chance(0.2);
  if (end) notes.push('half-close');
  return {
    klass, name: notes.join(' '), transport: 'tls-raw',
    writes: stall ? [bytes.subarray(0, rng.range(1, Math.min(8, Math.max(1, bytes.length))))] : writes,
    ...(stall ? { stallMs: rng.range(200, 600) } : {}), ...(end ? { end } : {}),
  };
}
