/**
 * Descriptors of sockets a process holds, from /proc (Linux): how the `--accept-batch` copies of
 * a listening socket are seen from outside, without timing anything.
 */
import { readdirSync, readlinkSync } from 'node:fs';

/** How many descriptors process `pid` holds of each socket, by the socket's inode: the counts, largest first. */
export function descriptorsPerSocket(pid: number | 'self'): number[] {
  const counts = new Map<string, number>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target = '';
    try { target = readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { continue; } // closed meanwhile (readdir's own)
    if (target.startsWith('socket:')) counts.set(target, (counts.get(target) ?? 0) + 1);
  }
  return [...counts.values()].sort((a, b) => b - a);
}
