/**
 * @module The front's end of a worker's channel, read into large buffers that are read into again.
 *
 * Why: Node reads a socket 64 KiB at a time into a fresh allocation each (libuv's suggested
 * size), so a download of 1 GiB from a worker costs the front 16,384 reads, 16,384 external
 * allocations for V8 to collect, and as many `writev`s to the client. Here the channel is read
 * into READ_BYTES buffers (net.Socket's `onread` option), in fewer, larger reads, and a buffer is
 * read into again once nothing refers to it, so its memory stays in the CPU's cache and V8 has
 * nothing to collect (the README's "Bulk downloads" has the figures).
 *
 * Who may refer to a read: a read smaller than HAND_OVER_BYTES (a hello-world answer) is copied
 * out, and its buffer read into again at once. A larger one is lent: `onChunk` gets it with a
 * `ReadLease`; the frame decoder copies out whatever it keeps but the pieces of response bodies
 * (protocol/decode.ts, transient chunks), and each piece a response keeps takes the lease
 * (`hold`) until it was written (its write's callback). The buffer goes back to the free list when
 * the read is over and every hold was released; one whose holds are never released (a client
 * gone mid-write) is simply never reused, and the next read gets a new buffer.
 *
 * Node creates the child's stdio pipe (a socketpair) and wraps it in a socket that starts
 * reading at once; `onread` can only be given to a socket when it is made, so the pipe's handle
 * is moved to a new socket before any byte was read (same tick as the spawn). Where the handle
 * is not there (not a pipe, or a future Node that hides it), the original socket is used as is.
 */
import { Socket, type OnReadOpts, type SocketConstructorOpts } from 'node:net';
import type { Duplex } from 'node:stream';

/** Size of each read buffer. */
export const READ_BYTES = 256 * 1024;
/** Reads at least this large are lent (ReadLease); smaller ones are copied out. */
export const HAND_OVER_BYTES = 64 * 1024;
/** Free buffers kept per channel; more are left to the garbage collector. */
const MAX_FREE = 4;

/** A lent read: `hold()` for each piece of it kept past `onChunk`, then call what it returns once. */
export interface ReadLease {
  /** The buffer the read is in (a piece is part of it when its `.buffer` is this one's). */
  readonly memory: ArrayBufferLike;
  hold(): () => void;
}

interface HandleOwner {
  _handle?: { readStop?: () => number; reading?: boolean } | null;
}

class Lease implements ReadLease {
  holds = 0;
  isReadOver = false;

  constructor(readonly buffer: Buffer, private readonly onFree: (buffer: Buffer) => void) {}

  get memory(): ArrayBufferLike {
    return this.buffer.buffer;
  }

  hold(): () => void {
    this.holds += 1;
    let isReleased = false;
    return () => {
      if (isReleased) return;
      isReleased = true;
      this.holds -= 1;
      if (this.holds === 0 && this.isReadOver) this.onFree(this.buffer);
    };
  }

  /** `onChunk` returned: free now unless something holds a piece. */
  readOver(): boolean {
    this.isReadOver = true;
    return this.holds === 0;
  }
}

/**
 * A socket on `original`'s handle that calls `onChunk` with each read (never emitting 'data');
 * null when the handle cannot be moved (read `original`'s 'data' events then).
 */
export function largeReadSocket(original: Duplex, onChunk: (chunk: Buffer, lease: ReadLease | null) => void): Socket | null {
  const owner = original as Duplex & HandleOwner;
  const handle = owner._handle;
  if (!(original instanceof Socket) || handle === null || handle === undefined || typeof handle.readStop !== 'function') return null;
  handle.readStop();
  handle.reading = false; // else the new socket would take it for reading and never start
  owner._handle = null;
  // Closed without a handle: its 'close' still comes, which the child process waits for.
  original.destroy();
  const free: Buffer[] = [];
  const release = (buffer: Buffer): void => {
    if (free.length < MAX_FREE) free.push(buffer);
  };
  let buffer: Buffer = Buffer.allocUnsafeSlow(READ_BYTES);
  let isLent = false;
  // net.Socket's constructor takes `handle` (child_process passes it) and `onread`; its types list neither.
  const options: SocketConstructorOpts & { handle: unknown; onread: OnReadOpts } = {
    handle,
    readable: true,
    writable: true,
    onread: {
      buffer: () => {
        if (isLent) {
          buffer = free.pop() ?? Buffer.allocUnsafeSlow(READ_BYTES);
          isLent = false;
        }
        return buffer;
      },
      callback: (nread: number, buf: Uint8Array) => {
        const read = buf as Buffer;
        if (nread < HAND_OVER_BYTES) {
          onChunk(Buffer.from(read.subarray(0, nread)), null);
          return true;
        }
        const lease = new Lease(read, release);
        try {
          onChunk(read.subarray(0, nread), lease);
        } finally {
          // Still held: read the next into another buffer; this one is freed by its last release.
          if (!lease.readOver()) isLent = true;
        }
        return true; // flow control is the channel's credits: never pause
      },
    },
  };
  return new Socket(options);
}
