/**
 * @module A file streamed as a response body whose length was already promised (Content-Length).
 *
 * Between the `stat` that gave the length and the last read, the file may shrink (a log being
 * rotated, an upload being rewritten). `pipe` would then end the response short: with
 * `strictContentLength` Node throws from inside the file stream's `end` event (outside any
 * handler: the process ends), without it the client waits for bytes that never come and, on a
 * kept-alive connection, reads the next answer as the rest of this body. Here the bytes are
 * counted: a file that ends before `expected` bytes cuts the connection (never reused), and the
 * caller logs why. The file's listeners run behind the front's guard. Read errors are the
 * caller's (`onError`), which can still answer 500 if nothing was sent.
 */
import { close, read, type ReadStream } from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { FrontGuard } from './guard.js';
import type { SinkResponse } from './http2-stream-response.js';

export interface FileBodyEvents {
  /** The file gave fewer bytes than promised; the connection is being cut. */
  onShort(sentBytes: number, expectedBytes: number): void;
  /** The file could not be read; the file stream is already destroyed. */
  onError(error: Error): void;
}

/** Streams `file` into `res` (then ends it), exactly `expectedBytes`, under `res`'s back-pressure. */
export function streamFileBody(file: ReadStream, res: ServerResponse, expectedBytes: number, guard: FrontGuard, events: FileBodyEvents): void {
  let sent = 0;
  const cut = (): void => {
    file.destroy();
    res.destroy();
  };
  const resume = (): void => { file.resume(); };
  file.on('data', guard.wrap('file.data', (data: Buffer | string) => {
    const chunk = typeof data === 'string' ? Buffer.from(data) : data;
    if (res.destroyed) {
      file.destroy();
      return;
    }
    // A file that grew meanwhile: never more than promised (the read stream's `end` bounds it too).
    const part = sent + chunk.length > expectedBytes ? chunk.subarray(0, expectedBytes - sent) : chunk;
    sent += part.length;
    if (!res.write(part)) {
      file.pause();
      res.once('drain', resume);
    }
  }, cut));
  file.once('end', guard.wrap('file.end', () => {
    if (res.destroyed) return;
    if (sent < expectedBytes) {
      events.onShort(sent, expectedBytes);
      cut();
      return;
    }
    res.end();
  }, cut));
  file.once('error', guard.wrap('file.error', (error: Error) => {
    file.destroy();
    events.onError(error);
  }, cut));
  res.once('close', () => file.destroy());
}

/** Each read of a file handed over by a worker (sendFileRange). */
export const FILE_READ_BYTES = 1024 * 1024;
/**
 * Read buffers per file: some are being written while the next is read into. With two, the
 * socket ran dry while a read came back from the thread pool on this loaded 2-core machine;
 * four keep it fed (the README's "Bulk downloads: four file buffers" has the A/B). A client that
 * does not read holds all four, and nothing more is read.
 */
const FILE_BUFFERS = 4;

/**
 * Sends `expectedBytes` of the open file `fd` from `start` into `res` (then ends it), closing
 * `fd` when done, cut, or when `res` closes. As streamFileBody, but the file is read into at most
 * FILE_BUFFERS buffers of FILE_READ_BYTES that are read into again once their write is done
 * (its callback: the bytes are the kernel's), instead of a new buffer per read for V8 to
 * collect: the README's "Bulk downloads" has the figures. Back-pressure is the same bound: a
 * client that does not read holds every buffer, and nothing more is read.
 */
export function sendFileRange(fd: number, start: number, res: SinkResponse, expectedBytes: number, guard: FrontGuard, events: FileBodyEvents): void {
  const size = Math.min(FILE_READ_BYTES, expectedBytes);
  const free: Buffer[] = [];
  let made = 0;
  let sent = 0;
  let isReading = false;
  let isClosed = false;
  const close = (): void => {
    if (isClosed) return;
    isClosed = true;
    closeFd(fd);
  };
  const cut = (): void => {
    close();
    res.destroy();
  };
  const next = (): void => {
    if (isClosed || isReading) return;
    if (res.destroyed) {
      close();
      return;
    }
    if (sent === expectedBytes) {
      close();
      res.end();
      return;
    }
    let buffer = free.pop();
    if (buffer === undefined) {
      if (made === FILE_BUFFERS) return; // all are being written: the next write's callback reads on
      made += 1;
      buffer = Buffer.allocUnsafeSlow(size);
    }
    const into = buffer;
    isReading = true;
    // Never more than promised, whatever the file grew to meanwhile.
    read(fd, into, 0, Math.min(size, expectedBytes - sent), start + sent, guard.wrap('file.read', (error: Error | null, bytesRead: number) => {
      isReading = false;
      if (isClosed) return;
      if (error !== null) {
        close();
        events.onError(error);
        return;
      }
      if (bytesRead === 0) {
        events.onShort(sent, expectedBytes);
        cut();
        return;
      }
      sent += bytesRead;
      res.write(into.subarray(0, bytesRead), guard.wrap('file.written', () => {
        free.push(into);
        next();
      }, cut));
      next();
    }, cut));
  };
  res.once('close', close);
  next();
}

function closeFd(fd: number): void {
  close(fd, () => undefined);
}
