/**
 * @module The access log's writer: buffered lines, appended to a file or written to stdout.
 *
 * Several front processes may write to the same place (`--fronts N`), so each write() carries
 * whole lines only: to a regular file opened with O_APPEND a write lands whole at the end; to
 * a pipe (stdout under Docker or systemd) the kernel keeps a write whole only up to PIPE_BUF
 * (4096 bytes on Linux), so there batches are cut into writes of at most that many bytes of
 * whole lines. A `combined` or `json` line always fits (access-formats.ts FIELD_BUDGETS); a
 * longer web2py line is written alone. A pipe left non-blocking by another process answers
 * EAGAIN when full: the same write is tried again a little later, lines waiting meanwhile.
 */

import { close as closeFd, fstatSync, open as openFd, openSync, write as writeFd } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

import { ServerError } from '../errors/index.js';
import { ACCESS_LOG_FILE_NAME } from './access-formats.js';

const openAsync = promisify(openFd);
const closeAsync = promisify(closeFd);
const writeAsync = promisify(writeFd);

/** `--access-log -` (and `-l -`): the lines go to stdout. */
export const STDOUT = '-';

/**
 * Where the access log goes: `-` (stdout), an absolute file path, or null when it is off.
 * `--access-log` wins; else `-l` means web2py's `httpserver.log`. A relative path is in the
 * web2py folder (`folder`), where httpserver.log is.
 */
export function accessLogTarget(facts: { logging: boolean; accessLog: string | null; folder: string }): string | null {
  if (facts.accessLog === STDOUT) return STDOUT;
  if (facts.accessLog !== null) return resolve(facts.folder, facts.accessLog);
  return facts.logging ? join(facts.folder, ACCESS_LOG_FILE_NAME) : null;
}

export interface AccessLogOptions {
  /** Flush this long after the first buffered line, at the latest. */
  flushIntervalMs?: number;
  /** Flush at once when this much is buffered. */
  flushThresholdBytes?: number;
  /** Beyond this much waiting for a slow disk, lines are dropped (and counted), not hoarded. */
  maxBufferedBytes?: number;
  /** A write or reopen failed; web2py's `except: pass` drops the line silently, we tell. */
  onError?: (err: unknown) => void;
}

const DEFAULT_FLUSH_INTERVAL_MS = 50;
const DEFAULT_FLUSH_THRESHOLD_BYTES = 64 * 1024;
const DEFAULT_MAX_BUFFERED_BYTES = 16 * 1024 * 1024;
/** Linux's PIPE_BUF: a write to a pipe of at most this many bytes is never mixed with another's. */
export const ATOMIC_PIPE_WRITE_BYTES = 4096;
/** Longest pause before trying a write again that a full pipe refused (EAGAIN). */
const MAX_RETRY_PAUSE_MS = 200;

/** Where lines go: a file (opened by path: reopened on SIGUSR1) or a descriptor we do not own (stdout). */
type Target = { kind: 'file'; path: string } | { kind: 'descriptor'; label: string };

/**
 * Appends access lines to one file, or writes them to stdout. web2py opens, appends and closes
 * the file per request (`write_file(logfilename, line, "a")`); here lines are buffered and
 * written in batches by one file descriptor opened in append mode, so a request costs an array
 * push. All file operations run one after another on a promise chain, so order is kept across
 * reopen().
 */
export class AccessLog {
  /** The file's absolute path, or `stdout`. */
  readonly file: string;
  readonly #target: Target;
  #fd: number | null;
  /** Most bytes of whole lines per write(): unlimited for a regular file, PIPE_BUF for anything else. */
  #maxWriteBytes: number;
  #pendingLines: string[] = [];
  #pendingBytes = 0;
  #droppedLineCount = 0;
  #timer: NodeJS.Timeout | null = null;
  #chain: Promise<void> = Promise.resolve();
  #isFlushQueued = false;
  #closing: Promise<void> | null = null;
  readonly #flushIntervalMs: number;
  readonly #flushThresholdBytes: number;
  readonly #maxBufferedBytes: number;
  readonly #onError: (err: unknown) => void;

  private constructor(target: Target, fd: number, options: AccessLogOptions) {
    this.#target = target;
    this.file = target.kind === 'file' ? target.path : target.label;
    this.#fd = fd;
    this.#maxWriteBytes = maxWriteBytesOf(fd);
    this.#flushIntervalMs = options.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS;
    this.#flushThresholdBytes = options.flushThresholdBytes ?? DEFAULT_FLUSH_THRESHOLD_BYTES;
    this.#maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    this.#onError = options.onError ?? ((): void => {});
  }

  /** Opens (creating) `file` for appending now, so an unwritable path fails at start: W2N_ERR_LOG_FILE. */
  static open(file: string, options: AccessLogOptions = {}): AccessLog {
    const absoluteFile = resolve(file);
    let fd: number;
    try {
      fd = openSync(absoluteFile, 'a');
    } catch (err: unknown) {
      throw logFileError(absoluteFile, err);
    }
    return new AccessLog({ kind: 'file', path: absoluteFile }, fd, options);
  }

  /** The log `accessLogTarget` chose: stdout (fd 1) or the file, opened now. */
  static openTarget(target: string, options: AccessLogOptions = {}): AccessLog {
    return target === STDOUT ? AccessLog.toDescriptor(1, 'stdout', options) : AccessLog.open(target, options);
  }

  /** Writes to a descriptor this log does not own (stdout: fd 1): never closed nor reopened. */
  static toDescriptor(fd: number, label: string, options: AccessLogOptions = {}): AccessLog {
    return new AccessLog({ kind: 'descriptor', label }, fd, options);
  }

  /** Lines dropped because the disk fell behind, a write failed, or the log was closed. */
  get droppedLineCount(): number {
    return this.#droppedLineCount;
  }

  /** Buffers one line (from formatAccessLine); never waits for the disk. */
  write(line: string): void {
    const lineBytes = Buffer.byteLength(line, 'utf8');
    if (this.#closing !== null || this.#pendingBytes + lineBytes > this.#maxBufferedBytes) {
      this.#droppedLineCount += 1;
      return;
    }
    this.#pendingLines.push(line);
    this.#pendingBytes += lineBytes;
    if (this.#pendingBytes >= this.#flushThresholdBytes) {
      void this.#queueFlush();
    } else if (this.#timer === null) {
      this.#timer = setTimeout(() => void this.#queueFlush(), this.#flushIntervalMs);
      this.#timer.unref(); // close() flushes on a graceful stop; the timer must not hold the process
    }
  }

  /** For SIGUSR1 after logrotate: flush to the old file, close it, open the same path again. */
  reopen(): Promise<void> {
    if (this.#closing !== null) return this.#closing;
    let failure: ServerError | null = null;
    const target = this.#target;
    void this.#enqueue(async () => {
      await this.#writePending();
      if (target.kind !== 'file') return; // stdout: nothing to reopen
      await this.#closeFd();
      try {
        this.#fd = await openAsync(target.path, 'a');
        this.#maxWriteBytes = maxWriteBytesOf(this.#fd);
      } catch (err: unknown) {
        failure = logFileError(this.file, err); // lines are dropped until a reopen succeeds
      }
    });
    return this.#chain.then(() => {
      if (failure !== null) throw failure;
    });
  }

  /** Writes every buffered line, then closes the file; later write() calls are dropped. */
  close(): Promise<void> {
    if (this.#closing === null) {
      this.#closing = this.#enqueue(async () => {
        await this.#writePending();
        await this.#closeFd();
      });
    }
    return this.#closing;
  }

  #queueFlush(): Promise<void> {
    if (!this.#isFlushQueued) {
      this.#isFlushQueued = true;
      void this.#enqueue(() => this.#writePending());
    }
    return this.#chain;
  }

  /** Runs `task` after everything queued before it; the chain itself never rejects. */
  #enqueue(task: () => Promise<void>): Promise<void> {
    this.#chain = this.#chain.then(task).catch((err: unknown) => this.#report(err));
    return this.#chain;
  }

  #report(err: unknown): void {
    try {
      this.#onError(err);
    } catch {
      // a throwing listener must not break the chain
    }
  }

  /** Takes the whole buffer at the moment it runs, so queued flushes coalesce. */
  async #writePending(): Promise<void> {
    this.#isFlushQueued = false;
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (this.#pendingLines.length === 0) return;
    const lines = this.#pendingLines;
    this.#pendingLines = [];
    this.#pendingBytes = 0;
    if (this.#fd === null) {
      this.#droppedLineCount += lines.length;
      return;
    }
    const batches = batchesOf(lines, this.#maxWriteBytes);
    for (const [index, batch] of batches.entries()) {
      try {
        await writeFully(this.#fd, batch.data);
      } catch (err: unknown) {
        for (const rest of batches.slice(index)) this.#droppedLineCount += rest.lineCount;
        this.#report(logFileError(this.file, err));
        return;
      }
    }
  }

  /** A failed close is reported, not thrown: reopen() must still open the file again. */
  async #closeFd(): Promise<void> {
    const fd = this.#fd;
    if (this.#target.kind !== 'file') return; // not ours to close
    this.#fd = null;
    if (fd === null) return;
    try {
      await closeAsync(fd);
    } catch (err: unknown) {
      this.#report(logFileError(this.file, err));
    }
  }
}

/** A regular file takes any batch whole (O_APPEND); a pipe, a terminal or a socket: PIPE_BUF. */
function maxWriteBytesOf(fd: number): number {
  try {
    return fstatSync(fd).isFile() ? Infinity : ATOMIC_PIPE_WRITE_BYTES;
  } catch {
    return ATOMIC_PIPE_WRITE_BYTES;
  }
}

/** Lines joined into writes of at most `maxBytes` each, whole lines only (a longer line alone). */
export function batchesOf(lines: readonly string[], maxBytes: number): { data: Buffer; lineCount: number }[] {
  if (maxBytes === Infinity) return [{ data: Buffer.from(lines.join(''), 'utf8'), lineCount: lines.length }];
  const batches: { data: Buffer; lineCount: number }[] = [];
  let pending: string[] = [];
  let pendingBytes = 0;
  const flush = (): void => {
    if (pending.length === 0) return;
    batches.push({ data: Buffer.from(pending.join(''), 'utf8'), lineCount: pending.length });
    pending = [];
    pendingBytes = 0;
  };
  for (const line of lines) {
    const bytes = Buffer.byteLength(line, 'utf8');
    if (pendingBytes + bytes > maxBytes) flush();
    pending.push(line);
    pendingBytes += bytes;
  }
  flush();
  return batches;
}

/**
 * fs.write may write part of a buffer (only a write above PIPE_BUF, to a pipe); write the rest.
 * EAGAIN (a full pipe that another process made non-blocking) writes nothing: try again soon.
 */
async function writeFully(fd: number, data: Buffer): Promise<void> {
  let offsetBytes = 0;
  let pauseMs = 1;
  while (offsetBytes < data.length) {
    try {
      const { bytesWritten } = await writeAsync(fd, data, offsetBytes, data.length - offsetBytes, null);
      offsetBytes += bytesWritten;
      pauseMs = 1;
    } catch (err: unknown) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      await new Promise((resume) => setTimeout(resume, pauseMs));
      pauseMs = Math.min(pauseMs * 2, MAX_RETRY_PAUSE_MS);
    }
  }
}

function logFileError(file: string, cause: unknown): ServerError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new ServerError('W2N_ERR_LOG_FILE', { file, reason }, { cause });
}
