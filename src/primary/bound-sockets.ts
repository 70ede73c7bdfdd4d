/**
 * @module The listening sockets, bound and held by the primary, accepted on by the fronts.
 *
 * The primary parses no client bytes, so it must never accept: it binds each socket and keeps
 * its descriptor, and every front process receives that descriptor (several times, see
 * `--accept-batch`) as an inherited file descriptor and listens and accepts on it. The socket
 * itself lives as long as the primary holds it: when a front dies, connections wait in the
 * kernel's accept queue until its replacement accepts them; nobody gets "connection refused".
 *
 * Node has no public way to bind without also accepting in the same process (`net.Server`
 * always polls what it listens on). `net._createServerHandle` is the function Node's own
 * cluster module uses for exactly this (bind in the primary, listen in the workers); it is
 * exported by node:net since Node 0.x and checked at start, so a Node without it fails with one
 * clear line instead of misbehaving. A test asserts it exists.
 */
import { isIP } from 'node:net';
import { createRequire } from 'node:module';
import { lookup } from 'node:dns/promises';
import { getSystemErrorName } from 'node:util';
import { ServerError } from '../errors/index.js';
import { formatBindTarget, type BindTarget, type ListenerSpec } from '../front/listen-plan.js';
import { claimSocketFile, clearStaleSocket, removeSocketFile } from '../front/unix-socket.js';

/** The raw libuv handle Node's cluster binds with: a descriptor, an address, a close. */
interface RawServerHandle {
  readonly fd: number;
  getsockname?(out: { port?: number }): number;
  close(): void;
}

type CreateServerHandle = (address: string, port: number, addressType: number, fd: undefined, flags: number) => RawServerHandle | number;

function createServerHandle(): CreateServerHandle {
  // Through require: lint keeps net's server half (Server, Socket, connect) out of the primary.
  const candidate: unknown = Reflect.get(createRequire(import.meta.url)('node:net') as object, '_createServerHandle');
  if (typeof candidate !== 'function') {
    throw new ServerError('W2N_ERR_LISTEN_FAILED', { address: '*', reason: `this Node.js (${process.version}) lacks net._createServerHandle, which the primary binds with` });
  }
  return candidate as CreateServerHandle;
}

export interface BoundSocket {
  readonly spec: ListenerSpec;
  /** The descriptor the fronts inherit. */
  readonly fd: number;
  /** The bound port (TCP; the chosen one for port 0), or 0 for a Unix socket. */
  readonly port: number;
  /** `127.0.0.1:8000`, `[::1]:8443`, `unix:/run/app.sock`, with the bound port. */
  readonly label: string;
  /** Releases the descriptor; a Unix socket's file is removed when `removeFile`. */
  close(options?: { removeFile?: boolean }): void;
}

function bindError(address: string, errno: number): ServerError {
  const name = getSystemErrorName(errno);
  if (name === 'EADDRINUSE') return new ServerError('W2N_ERR_LISTEN_IN_USE', { address });
  if (name === 'EACCES') return new ServerError('W2N_ERR_LISTEN_DENIED', { address });
  if (name === 'EADDRNOTAVAIL') return new ServerError('W2N_ERR_LISTEN_FAILED', { address, reason: 'the address is not one of this machine' });
  return new ServerError('W2N_ERR_LISTEN_FAILED', { address, reason: name });
}

/** `-i localhost` works as with `server.listen(host)`: a name is resolved to its first address. */
async function resolveIp(ip: string, port: number): Promise<string> {
  if (isIP(ip) !== 0) return ip;
  try {
    return (await lookup(ip)).address;
  } catch (cause: unknown) {
    throw new ServerError('W2N_ERR_LISTEN_FAILED', { address: formatBindTarget({ ip, port }), reason: `cannot resolve ${ip}` }, { cause });
  }
}

async function bindOne(spec: ListenerSpec, create: CreateServerHandle): Promise<BoundSocket> {
  if (spec.kind === 'tcp') {
    const ip = await resolveIp(spec.ip, spec.port);
    const wanted = formatBindTarget({ ip: spec.ip, port: spec.port });
    const handle = create(ip, spec.port, isIP(ip), undefined, 0);
    if (typeof handle === 'number') throw bindError(wanted, handle);
    // libuv keeps a failed bind's error until listen() (a "delayed error"); getsockname reports it now.
    const out: { port?: number } = {};
    const status = handle.getsockname?.(out) ?? 0;
    if (status !== 0) {
      handle.close();
      throw bindError(wanted, status);
    }
    const port = out.port ?? spec.port;
    const label = formatBindTarget({ ip: spec.ip, port });
    return { spec, fd: handle.fd, port, label, close: () => handle.close() };
  }
  const target: BindTarget = { path: spec.path };
  const label = formatBindTarget(target);
  await clearStaleSocket(spec.path);
  const handle = create(spec.path, -1, -1, undefined, 0);
  if (typeof handle === 'number') throw bindError(label, handle);
  let inode: number;
  try {
    inode = claimSocketFile(spec.path, spec.mode);
  } catch (error: unknown) {
    handle.close();
    throw error;
  }
  return {
    spec, fd: handle.fd, port: 0, label,
    close: ({ removeFile = true } = {}) => {
      handle.close();
      if (removeFile) removeSocketFile(spec.path, inode);
    },
  };
}

/** Binds every listener in order, or none: on a failure the bound ones are released and the error rethrown. */
export async function bindAll(specs: readonly ListenerSpec[]): Promise<BoundSocket[]> {
  const create = createServerHandle();
  const bound: BoundSocket[] = [];
  try {
    for (const spec of specs) bound.push(await bindOne(spec, create));
  } catch (error: unknown) {
    for (const socket of bound) socket.close();
    throw error;
  }
  return bound;
}
