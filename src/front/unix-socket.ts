/**
 * @module The file of a Unix socket listener: stale ones cleared at start, mode, removal at stop.
 *
 * A server killed with SIGKILL leaves its socket file behind, and bind() then fails with
 * EADDRINUSE although nobody listens. So before binding, an existing file is probed: a socket
 * that refuses connections (ECONNREFUSED) is stale and removed; a socket that answers belongs to
 * a live server (W2N_ERR_LISTEN_IN_USE); anything that is not a socket is never deleted.
 * Node (libuv) removes the file when the listener closes; `removeSocketFile` covers the paths
 * that exit without closing, and only removes the file this process created (same inode).
 */
import { chmodSync, lstatSync, statSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { ServerError } from '../errors/index.js';

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException).code;
}

/** Resolves true when something accepts connections on the socket at `path`. */
function isAnswering(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    // ECONNREFUSED: a socket file nobody listens on. Anything else (EAGAIN: a full backlog,
    // EACCES) may well be a live server: leave it alone.
    probe.once('error', (error) => resolve(errorCode(error) !== 'ECONNREFUSED'));
  });
}

/** Makes way for binding `path`: removes a stale socket file, refuses a live one or another kind of file. */
export async function clearStaleSocket(path: string): Promise<void> {
  const address = `unix:${path}`;
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (error: unknown) {
    if (errorCode(error) === 'ENOENT') return;
    throw new ServerError('W2N_ERR_LISTEN_FAILED', { address, reason: (error as Error).message }, { cause: error });
  }
  if (!isSocket) throw new ServerError('W2N_ERR_LISTEN_FAILED', { address, reason: 'the file exists and is not a socket (not removed)' });
  if (await isAnswering(path)) throw new ServerError('W2N_ERR_LISTEN_IN_USE', { address });
  try {
    unlinkSync(path);
  } catch (error: unknown) {
    if (errorCode(error) !== 'ENOENT') {
      throw new ServerError('W2N_ERR_LISTEN_FAILED', { address, reason: `cannot remove the stale socket: ${(error as Error).message}` }, { cause: error });
    }
  }
}

/** Sets the socket's mode right after bind; returns its inode, to recognise the file at stop. */
export function claimSocketFile(path: string, mode: number): number {
  try {
    chmodSync(path, mode);
    return statSync(path).ino;
  } catch (error: unknown) {
    throw new ServerError('W2N_ERR_LISTEN_FAILED', { address: `unix:${path}`, reason: `cannot set its mode: ${(error as Error).message}` }, { cause: error });
  }
}

/** Removes the socket file if it is still the one this process bound. */
export function removeSocketFile(path: string, inode: number): void {
  try {
    if (lstatSync(path).ino === inode) unlinkSync(path);
  } catch {
    // already gone (Node removes it when the listener closes)
  }
}
