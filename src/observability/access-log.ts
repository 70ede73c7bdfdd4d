/** @module web2py's access log (httpserver.log): its exact line, and a buffered append-only writer. */

import { close as closeFd, open as openFd, openSync, write as writeFd } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';

import { ServerError } from '../errors/index.js';

const openAsync = promisify(openFd);
const closeAsync = promisify(closeFd);
const writeAsync = promisify(writeFd);

/** handlers/web2py_on_gevent.py: `appfactory(..., logfilename='httpserver.log', ...)`, in the web2py folder. */
export const ACCESS_LOG_FILE_NAME = 'httpserver.log';

export interface AccessEntry {
  /** environ["REMOTE_ADDR"] */
  remoteAddr: string;
  /** When the request finished; printed in local time, like `datetime.datetime.today()`. */
  time: Date;
  /** environ["REQUEST_METHOD"] */
  method: string;
  /**
   * environ["PATH_INFO"] as PEP 3333 gives it: percent-decoded, one char per byte (latin-1),
   * so a UTF-8 "é" arrives as "Ã©" and is written as UTF-8 again, as web2py does.
   */
  pathInfo: string;
  /** environ["SERVER_PROTOCOL"], e.g. "HTTP/1.1" */
  protocol: string;
  status: number;
  /** Time spent in the application, in seconds. */
  seconds: number;
}

/**
 * The line gluon/main.py appfactory.app_with_logging writes, including its newline:
 *   line = "%s, %s, %s, %s, %s, %s, %f\n" % (
 *       environ["REMOTE_ADDR"],
 *       datetime.datetime.today().strftime("%Y-%m-%d %H:%M:%S"),
 *       environ["REQUEST_METHOD"],
 *       environ["PATH_INFO"].replace(",", "%2C"),
 *       environ["SERVER_PROTOCOL"],
 *       (status_headers[0])[:3],
 *       time.time() - time_in,
 *   )
 * e.g. `127.0.0.1, 2024-06-10 14:03:07, GET, /welcome/default/index, HTTP/1.1, 200, 0.012345`.
 * Like web2py, nothing else is escaped: a decoded %0A in the path reaches the file as is.
 */
export function formatAccessLine(e: AccessEntry): string {
  return `${e.remoteAddr}, ${formatLocalDateTime(e.time)}, ${e.method}, ${e.pathInfo.replaceAll(',', '%2C')}, `
    + `${e.protocol}, ${String(e.status).slice(0, 3)}, ${formatPercentF(e.seconds)}\n`;
}

/** strftime("%Y-%m-%d %H:%M:%S") of the local time. */
function formatLocalDateTime(time: Date): string {
  const pad2 = (n: number): string => String(n).padStart(2, '0');
  return `${String(time.getFullYear()).padStart(4, '0')}-${pad2(time.getMonth() + 1)}-${pad2(time.getDate())} `
    + `${pad2(time.getHours())}:${pad2(time.getMinutes())}:${pad2(time.getSeconds())}`;
}

/**
 * Python's `"%f" % x`: six decimals, correctly rounded, ties to even. `toFixed(6)` is also
 * correctly rounded but breaks exact ties upwards (0.0078125 → "0.007813" where Python says
 * "0.007812"), so exact ties are detected on the exact decimal expansion and fixed.
 */
export function formatPercentF(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  const sign = x < 0 || Object.is(x, -0) ? '-' : '';
  const magnitude = Math.abs(x);
  return sign + (isExactTieAtSixDecimals(magnitude) ? roundTieToEven(magnitude) : magnitude.toFixed(6));
}

function isExactTieAtSixDecimals(magnitude: number): boolean {
  if (magnitude >= 1e21) return false; // toFixed switches to exponent form; no seconds are this large
  const digits = magnitude.toFixed(100).split('.')[1] ?? '';
  return digits[6] === '5' && /^0*$/.test(digits.slice(7));
}

function roundTieToEven(magnitude: number): string {
  const truncated = magnitude.toFixed(100).slice(0, -94); // integer part, '.', six decimals
  const lastDigit = Number(truncated.at(-1));
  if (lastDigit % 2 === 0) return truncated;
  return (Number(truncated) + 1e-6).toFixed(6); // odd last digit: away from zero, to even
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

/**
 * Appends access lines to one file. web2py opens, appends and closes the file per request
 * (`write_file(logfilename, line, "a")`); here lines are buffered and written in batches by
 * one file descriptor opened in append mode, so a request costs an array push. All file
 * operations run one after another on a promise chain, so order is kept across reopen().
 */
export class AccessLog {
  readonly file: string;
  #fd: number | null;
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

  private constructor(file: string, fd: number, options: AccessLogOptions) {
    this.file = file;
    this.#fd = fd;
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
    return new AccessLog(absoluteFile, fd, options);
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
    void this.#enqueue(async () => {
      await this.#writePending();
      await this.#closeFd();
      try {
        this.#fd = await openAsync(this.file, 'a');
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
    try {
      await writeFully(this.#fd, Buffer.from(lines.join(''), 'utf8'));
    } catch (err: unknown) {
      this.#droppedLineCount += lines.length;
      this.#report(logFileError(this.file, err));
    }
  }

  /** A failed close is reported, not thrown: reopen() must still open the file again. */
  async #closeFd(): Promise<void> {
    const fd = this.#fd;
    this.#fd = null;
    if (fd === null) return;
    try {
      await closeAsync(fd);
    } catch (err: unknown) {
      this.#report(logFileError(this.file, err));
    }
  }
}

/** fs.write may write part of a buffer; write the rest. */
async function writeFully(fd: number, data: Buffer): Promise<void> {
  let offsetBytes = 0;
  while (offsetBytes < data.length) {
    const { bytesWritten } = await writeAsync(fd, data, offsetBytes, data.length - offsetBytes, null);
    offsetBytes += bytesWritten;
  }
}

function logFileError(file: string, cause: unknown): ServerError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new ServerError('W2N_ERR_LOG_FILE', { file, reason }, { cause });
}
