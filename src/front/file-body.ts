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
import type { ReadStream } from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { FrontGuard } from './guard.js';

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
