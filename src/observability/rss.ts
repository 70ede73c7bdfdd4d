/**
 * @module A process's resident memory (RSS), read from /proc: the status page's worker table,
 * `--max-rss`, and the `server.stats` line.
 */
import { readFile } from 'node:fs/promises';

/**
 * A process's resident memory from /proc/PID/status (0 when it lists none: a process on its way
 * out); null when the file cannot be read (it is gone, or this is not Linux).
 */
export async function rssOf(pid: number | undefined | null): Promise<number | null> {
  if (pid === undefined || pid === null) return null;
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
  } catch {
    return null;
  }
}
