/**
 * @module A request body of unknown length gathered whole: in memory up to a threshold, then in a temp file.
 *
 * Why: web2py (like most WSGI apps) reads `CONTENT_LENGTH` bytes of wsgi.input and sees an empty
 * body without it, so a chunked body is read to its end here and handed over with its size.
 *
 * The temp file is opened with O_EXCL and mode 0600 and unlinked at once: only the descriptor
 * keeps it, so no file is left behind whatever ends the request (completion, client abort,
 * worker crash, 413, server stop, even SIGKILL of the front), and closing the descriptor frees
 * the space. Memory stays bounded for any size: the source is paused while writes are behind,
 * and the body goes to the worker as a file stream that the channel's credits pause. It stays
 * bounded for any number of bodies too: past SPOOL_MEMORY_TOTAL_BYTES held in memory by all of
 * them together, a body goes to a temp file at once, however short (otherwise 300 clients each
 * sending just under --body-buffer-size and never finishing would hold 300 times it).
 */
import { randomBytes } from 'node:crypto';
import { openSync, closeSync, unlinkSync } from 'node:fs';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { BodyFile } from '../pool/exchange.js';
import { SpoolBlocks, type BlockBatch } from './spool-blocks.js';

export interface SpoolLimits {
  /** Bytes kept in memory; a longer body moves to a temp file. */
  memoryBytes: number;
  /** A body longer than this is refused (`too-large`), as soon as it crosses. */
  maxBytes: number;
  /** Folder of the temp files. */
  dir: string;
}

export type SpoolOutcome =
  | { kind: 'complete'; body: SpooledBody }
  /** Everything spooled so far is released; the source is left paused, its listeners removed. */
  | { kind: 'too-large'; receivedBytes: number }
  | { kind: 'aborted' }
  | { kind: 'failed'; reason: string };

/**
 * Writes are batched; past this many bytes waiting for the disk, the source is paused. 1 MiB
 * rather than 256 KiB: a quarter of the writes (each a hand-off to libuv's thread pool) cost the
 * front about 15% less CPU per spooled GiB (README, "Chunked uploads").
 */
const WRITE_HIGH_WATER_BYTES = 1024 * 1024;
/**
 * Read size of the file stream sent to the worker: one BODY frame per read (the protocol's
 * MAX_CHUNK). 64 KiB reads cost a quarter more front CPU per byte (README, "Uploads").
 */
const READ_CHUNK_BYTES = 256 * 1024;
const FILE_PREFIX = 'w2n-body-';
/** Chunks smaller than this are copied together into blocks of BLOCK_BYTES. */
const SMALL_CHUNK_BYTES = 16 * 1024;
const BLOCK_BYTES = 64 * 1024;
/** Memory all spooled bodies may hold together; past it, bodies are spooled to disk. */
export const SPOOL_MEMORY_TOTAL_BYTES = 32 * 1024 * 1024;

/** Bytes of spooled bodies in memory now, across all requests. */
let memoryHeldBytes = 0;

/** Reads `source` to its end (or until it is too large, aborts, or the disk fails). */
export function spoolBody(source: Readable, limits: SpoolLimits): Promise<SpoolOutcome> {
  return new Promise((resolve) => {
    new Spooler(source, limits, resolve).start();
  });
}

/**
 * Checks at start that temp files can be made in `dir` (create, unlink). Returns the reason it
 * cannot, or null.
 */
export function probeSpoolDir(dir: string): string | null {
  const file = join(dir, `${FILE_PREFIX}probe-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    closeSync(openSync(file, 'wx', 0o600));
    unlinkSync(file);
    return null;
  } catch (cause: unknown) {
    return cause instanceof Error ? cause.message : String(cause);
  }
}

/**
 * A complete body, in memory or in an unlinked temp file; `dispose()` releases it. A body in a
 * file may be lent to the worker (`retain()`, pool/exchange.ts BodyFile): it then reads the file
 * itself, and its descriptor stays open until every holder let go, even past `dispose()`.
 */
export class SpooledBody implements BodyFile {
  private streamed: Readable | null = null;
  private isDisposed = false;
  private holders = 0;
  private isReleased = false;

  constructor(
    readonly size: number,
    private chunks: Buffer[],
    private readonly file: FileHandle | null,
    /** Of the memory total (SPOOL_MEMORY_TOTAL_BYTES), given back at dispose(). */
    private heldBytes = 0,
    /** The temp file's device and inode (0 for a body in memory). */
    readonly dev = 0n,
    readonly ino = 0n,
  ) {}

  get isOnDisk(): boolean {
    return this.file !== null;
  }

  /** The temp file's descriptor (only for a body on disk: see isOnDisk). */
  get fd(): number {
    if (this.file === null) throw new Error('SpooledBody.fd of a body in memory');
    return this.file.fd;
  }

  retain(): () => void {
    this.holders += 1;
    let isHeld = true;
    return () => {
      if (!isHeld) return;
      isHeld = false;
      this.holders -= 1;
      if (this.isDisposed && this.holders === 0) this.release();
    };
  }

  /** The body as a stream (once): its chunks, or the file read in READ_CHUNK_BYTES pieces. */
  stream(): Readable {
    if (this.streamed !== null) throw new Error('SpooledBody.stream() called twice');
    if (this.file === null || this.size === 0) {
      const chunks = this.chunks;
      this.chunks = [];
      this.streamed = Readable.from(chunks, { objectMode: false });
    } else {
      // autoClose: the stream closes the descriptor at its end or when destroyed.
      this.streamed = this.file.createReadStream({ start: 0, end: this.size - 1, highWaterMark: READ_CHUNK_BYTES, autoClose: true });
    }
    return this.streamed;
  }

  /**
   * Releases the memory or the file descriptor (whether or not the stream was read); the
   * descriptor once no holder is left (retain()).
   */
  dispose(): void {
    if (this.isDisposed) return;
    this.isDisposed = true;
    this.chunks = [];
    memoryHeldBytes -= this.heldBytes;
    this.heldBytes = 0;
    if (this.holders === 0) this.release();
  }

  private release(): void {
    if (this.isReleased) return;
    this.isReleased = true;
    if (this.streamed !== null) this.streamed.destroy();
    else if (this.file !== null) closeQuietly(this.file);
  }
}

function closeQuietly(file: FileHandle): void {
  file.close().catch(() => undefined);
}

/**
 * Received chunks in order, small ones copied together into 64 KiB blocks: a client sending
 * one-byte chunks must not cost an object per byte (the memory limit counts bytes).
 */
class ChunkList {
  private sealed: Buffer[] = [];
  private block: Buffer | null = null;
  private used = 0;
  bytes = 0;

  push(chunk: Buffer): void {
    this.bytes += chunk.length;
    if (chunk.length >= SMALL_CHUNK_BYTES) {
      this.seal();
      this.sealed.push(chunk);
      return;
    }
    if (this.block !== null && this.used + chunk.length > this.block.length) this.seal();
    this.block ??= Buffer.allocUnsafe(BLOCK_BYTES);
    chunk.copy(this.block, this.used);
    this.used += chunk.length;
  }

  /** Everything pushed so far, in order; the list is empty afterwards. */
  take(): Buffer[] {
    this.seal();
    const taken = this.sealed;
    this.sealed = [];
    this.bytes = 0;
    return taken;
  }

  private seal(): void {
    if (this.block !== null && this.used > 0) this.sealed.push(this.block.subarray(0, this.used));
    this.block = null;
    this.used = 0;
  }
}

/** One spooling: listens to the source until an outcome, then lets go of it. */
class Spooler {
  private size = 0;
  /** Memory phase: every chunk (then the first batch written to the file). */
  private chunks = new ChunkList();
  /** Opening and file phases: the bytes not yet written, copied out of Node's chunks. */
  private blocks = new SpoolBlocks();
  private file: FileHandle | null = null;
  /** The temp file's identity (BodyFile.dev, ino). */
  private dev = 0n;
  private ino = 0n;
  private phase: 'memory' | 'opening' | 'file' = 'memory';
  private writtenBytes = 0;
  private isWriting = false;
  private hasEnded = false;
  private isSettled = false;
  /** Bytes of this body counted in memoryHeldBytes (the memory phase's). */
  private heldBytes = 0;

  constructor(
    private readonly source: Readable,
    private readonly limits: SpoolLimits,
    private readonly resolve: (outcome: SpoolOutcome) => void,
  ) {}

  start(): void {
    this.source.on('data', this.onData);
    this.source.on('end', this.onEnd);
    this.source.on('aborted', this.onAbort);
    this.source.on('error', this.onAbort);
    this.source.on('close', this.onClose);
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.isSettled) return;
    if (this.size + chunk.length > this.limits.maxBytes) {
      this.settle({ kind: 'too-large', receivedBytes: this.size + chunk.length });
      return;
    }
    this.size += chunk.length;
    if (this.phase === 'memory') {
      this.chunks.push(chunk);
      this.heldBytes += chunk.length;
      memoryHeldBytes += chunk.length;
      if (this.size > this.limits.memoryBytes || memoryHeldBytes > SPOOL_MEMORY_TOTAL_BYTES) void this.openFile();
      return;
    }
    this.blocks.push(chunk);
    if (this.chunks.bytes + this.blocks.bytes >= WRITE_HIGH_WATER_BYTES) this.source.pause();
    if (this.phase === 'file' && !this.isWriting) void this.writePending();
  };

  private readonly onEnd = (): void => {
    this.hasEnded = true;
    if (this.phase === 'memory') {
      // The body takes over this spool's share of the memory total.
      const held = this.heldBytes;
      this.heldBytes = 0;
      this.settle({ kind: 'complete', body: new SpooledBody(this.size, this.chunks.take(), null, held) });
    }
    else if (this.phase === 'file' && !this.isWriting) void this.writePending();
  };

  private readonly onAbort = (): void => {
    this.settle({ kind: 'aborted' });
  };

  /** 'close' without 'end': the request was cut (Node may emit only this one). */
  private readonly onClose = (): void => {
    if (!this.hasEnded) this.settle({ kind: 'aborted' });
  };

  private async openFile(): Promise<void> {
    this.phase = 'opening';
    // Its chunks are written out next: they no longer count against the memory total.
    this.releaseHeld();
    this.source.pause();
    const path = join(this.limits.dir, `${FILE_PREFIX}${process.pid}-${randomBytes(8).toString('hex')}`);
    let file: FileHandle;
    try {
      file = await open(path, 'wx+', 0o600);
    } catch (cause: unknown) {
      this.settle({ kind: 'failed', reason: describe(cause) });
      return;
    }
    try {
      await unlink(path);
    } catch (cause: unknown) {
      closeQuietly(file);
      this.settle({ kind: 'failed', reason: `cannot unlink ${path}: ${describe(cause)}` });
      return;
    }
    try {
      ({ dev: this.dev, ino: this.ino } = await file.stat({ bigint: true }));
    } catch (cause: unknown) {
      closeQuietly(file);
      this.settle({ kind: 'failed', reason: `cannot stat ${path}: ${describe(cause)}` });
      return;
    }
    if (this.isSettled) {
      closeQuietly(file);
      return;
    }
    this.file = file;
    this.phase = 'file';
    await this.writePending();
  }

  /** Writes what is pending, batch after batch; completes the spool when the source has ended. */
  private async writePending(): Promise<void> {
    const file = this.file!;
    this.isWriting = true;
    try {
      while (this.chunks.bytes + this.blocks.bytes > 0 && !this.isSettled) {
        // The memory phase's chunks first (once), then the blocks.
        const bytes = this.chunks.bytes > 0 ? this.chunks.bytes : this.blocks.bytes;
        const batch: BlockBatch = this.chunks.bytes > 0 ? { pieces: this.chunks.take(), recycle: () => undefined } : this.blocks.take();
        if (!this.hasEnded) this.source.resume();
        await writeFully(file, batch.pieces, this.writtenBytes);
        // Only after a complete write: a failed one leaves its blocks to the GC.
        batch.recycle();
        this.writtenBytes += bytes;
      }
    } catch (cause: unknown) {
      this.settle({ kind: 'failed', reason: describe(cause) });
      return;
    } finally {
      this.isWriting = false;
    }
    // Caught up: a body that stalls here keeps no block.
    this.blocks.releaseSpare();
    if (this.isSettled) return;
    if (this.hasEnded) {
      this.file = null; // the body owns it now
      this.settle({ kind: 'complete', body: new SpooledBody(this.size, [], file, 0, this.dev, this.ino) });
    } else {
      this.source.resume();
    }
  }

  private releaseHeld(): void {
    memoryHeldBytes -= this.heldBytes;
    this.heldBytes = 0;
  }

  private settle(outcome: SpoolOutcome): void {
    if (this.isSettled) return;
    this.isSettled = true;
    this.releaseHeld();
    this.source.off('data', this.onData);
    this.source.off('end', this.onEnd);
    this.source.off('aborted', this.onAbort);
    this.source.off('error', this.onAbort);
    this.source.off('close', this.onClose);
    if (outcome.kind !== 'complete') this.source.pause();
    this.chunks = new ChunkList();
    this.blocks.discard();
    // A write in progress still holds the file; it is closed when that write returns (settled).
    if (this.file !== null && outcome.kind !== 'complete') {
      const file = this.file;
      this.file = null;
      closeQuietly(file);
    }
    this.resolve(outcome);
  }
}

/** writev until every byte is on disk (a regular file may still take fewer bytes per call). */
async function writeFully(file: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  let pending = buffers;
  let at = position;
  while (pending.length > 0) {
    const { bytesWritten } = await file.writev(pending, at);
    at += bytesWritten;
    let skip = bytesWritten;
    const rest: Buffer[] = [];
    for (const buffer of pending) {
      if (skip >= buffer.length) {
        skip -= buffer.length;
      } else {
        rest.push(skip === 0 ? buffer : buffer.subarray(skip));
        skip = 0;
      }
    }
    pending = rest;
  }
}

function describe(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}
