/**
 * @module A small, bounded in-memory cache of hot static files, answered without touching disk.
 *
 * Serving a file with `send` costs a realpath, two stats and a read stream per request; for the
 * small CSS/JS files that make most static traffic, that is several times the cost of the answer
 * itself. After a file has been served once from disk (serve.ts calls `fill`), its bytes and
 * those of its fresh precompressed siblings are kept here, with the validators send would give.
 *
 * Invalidation: each cached file is watched (inotify) and dropped on any event; and an entry is
 * trusted for at most REVALIDATE_MS after the disk was last seen to hold it — that also covers
 * what a watch cannot see (a folder symlink swapped, a sibling created, a watch that could not be
 * set up). A hit on an entry older than RECHECK_MS looks at the disk again in the background
 * (serve.ts's `recheck`: realpaths and stats, no read): unchanged, the entry is trusted from the
 * moment that look began; changed, it is dropped. A hot file thus never expires, where letting it
 * expire sent every request of the next moment (hundreds at once over HTTP/2) to disk, each with
 * send, realpaths and stats, until one refill ended. A file that changes while it is read is not
 * cached.
 *
 * Bounded by total bytes (least recently used dropped first) and by the size of one file. A hit
 * only stamps its entry (no Map delete and set per hit: that showed in the CPU profile); the
 * least recently used is found by a scan when something must go, which only a fill causes.
 */
import { watch, type FSWatcher, type Stats } from 'node:fs';
import { readFile } from 'node:fs/promises';
import etag from 'etag';
import { contentType } from 'mime-types';
import { extname } from 'node:path';

/** One representation of a file: the file itself, or its `.br` / `.gz` sibling. */
export interface CachedBody {
  readonly body: Buffer;
  /** As send gives it: `W/"<size hex>-<mtime hex>"` of the file read. */
  readonly etag: string;
  readonly lastModified: string;
}

export interface CachedFile {
  /** As send sets it from the URL's file name (mime-types `contentType`). */
  readonly contentType: string;
  readonly identity: CachedBody;
  /** Precompressed siblings that serve.ts would choose (fresh, inside the static folder). */
  readonly encoded: ReadonlyMap<string, CachedBody>;
  /** A sibling exists (fresh or not): answers carry `Vary: Accept-Encoding`. */
  readonly vary: boolean;
}

/** A file found on disk, as serve.ts resolved it (real path inside the static folder). */
export interface FoundFile {
  readonly path: string;
  readonly stats: Stats;
}

/** What `fill` needs to know about the file: its resolved siblings, looked up by serve.ts. */
export interface FillRequest {
  readonly key: string;
  /** The URL's file name: the Content-Type comes from it, not from a `.gz` name. */
  readonly namedAs: string;
  readonly file: FoundFile;
  /** Every existing sibling by coding, with whether serve.ts would choose it (not stale). */
  readonly siblings: readonly { readonly coding: string; readonly file: FoundFile; readonly fresh: boolean }[];
  /**
   * Looks at the disk again (no read): true when it still holds what `file` and `siblings` say
   * (same real paths, inodes, sizes, times; the same siblings). Absent: the entry simply expires.
   */
  readonly recheck?: () => Promise<boolean>;
}

export interface FileCacheLimits {
  /** Total bytes of all bodies; 0 disables the cache. */
  readonly maxBytes: number;
  /** A larger file (or sibling) is always streamed from disk. */
  readonly maxFileBytes: number;
}

/** How long an entry is trusted without looking at the disk again. */
export const REVALIDATE_MS = 1_000;
/** From this age on, a hit starts a recheck in the background (half the bound: time to finish). */
export const RECHECK_MS = REVALIDATE_MS / 2;

interface Entry {
  readonly file: CachedFile;
  readonly bytes: number;
  /** When the disk was last seen to hold this (performance.now()): the fill, or a recheck's start. */
  checkedAt: number;
  readonly watchers: FSWatcher[];
  readonly recheck: (() => Promise<boolean>) | undefined;
  rechecking: boolean;
  /** The hit count when it was last used: the smallest goes first. */
  lastUsed: number;
}

export class FileCache {
  readonly #limits: FileCacheLimits;
  readonly #entries = new Map<string, Entry>();
  readonly #filling = new Set<string>();
  #bytes = 0;
  #hits = 0;

  constructor(limits: FileCacheLimits) {
    this.#limits = limits;
  }

  get enabled(): boolean {
    return this.#limits.maxBytes > 0;
  }

  /** Bytes held now (for tests and metrics). */
  get bytes(): number {
    return this.#bytes;
  }

  /** Fills still reading, in the background (for tests: at 0, every fill begun so far has kept its entry or given up). */
  get fillsUnderWay(): number {
    return this.#filling.size;
  }

  /** Answers given from memory since the start (for tests and metrics). */
  get hits(): number {
    return this.#hits;
  }

  /** The cached file for this key, or undefined (not cached, or due for a look at the disk). */
  get(key: string): CachedFile | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    const age = performance.now() - entry.checkedAt;
    if (age > REVALIDATE_MS) {
      this.#drop(key);
      return undefined;
    }
    if (age > RECHECK_MS && !entry.rechecking && entry.recheck !== undefined) this.#recheck(key, entry, entry.recheck);
    this.#hits += 1;
    entry.lastUsed = this.#hits;
    return entry.file;
  }

  /** Would a file of this size be kept? serve.ts asks before looking up siblings for `fill`. */
  admits(size: number): boolean {
    return this.enabled && size <= this.#limits.maxFileBytes;
  }

  /** Reads the file and its siblings and keeps them; in the background, errors mean "not cached". */
  fill(request: FillRequest): void {
    const { key } = request;
    if (!this.enabled || this.#filling.has(key) || this.#entries.has(key)) return;
    this.#filling.add(key);
    this.#read(request).then((entry) => {
      if (entry !== null) this.#keep(key, entry);
    }, () => { /* unreadable now: it stays uncached, served from disk */ }).finally(() => this.#filling.delete(key));
  }

  /**
   * The disk as it is now, in the background. Renewed from `startedAt`: the disk was seen to hold
   * the entry at some moment after it, so REVALIDATE_MS still bounds how stale an answer can be.
   */
  #recheck(key: string, entry: Entry, recheck: () => Promise<boolean>): void {
    entry.rechecking = true;
    const startedAt = performance.now();
    void recheck().catch(() => false).then((same) => {
      entry.rechecking = false;
      // Dropped (a watch event) or replaced meanwhile: that entry is no longer this one's to renew.
      if (this.#entries.get(key) !== entry) return;
      if (same) entry.checkedAt = startedAt;
      else this.#drop(key);
    });
  }

  /** Drops every entry and closes every watch (server stop, tests). */
  clear(): void {
    for (const key of [...this.#entries.keys()]) this.#drop(key);
  }

  async #read(request: FillRequest): Promise<Entry | null> {
    const files = [request.file, ...request.siblings.map((sibling) => sibling.file)];
    if (files.some((file) => file.stats.size > this.#limits.maxFileBytes)) return null;
    const watchers: FSWatcher[] = [];
    let changed = false;
    const onChange = (): void => {
      changed = true;
      this.#drop(request.key);
    };
    // Watch before reading: a change during the read is seen, and the result not kept.
    for (const file of files) {
      try {
        watchers.push(watch(file.path, { persistent: false }, onChange));
      } catch {
        // No watch (inotify limit, odd file system): REVALIDATE_MS still bounds staleness.
      }
    }
    const close = (): null => {
      for (const watcher of watchers) watcher.close();
      return null;
    };
    try {
      const bodies = await Promise.all(files.map((file) => readFile(file.path)));
      // A size other than the stat's means the file changed between stat and read.
      if (changed || bodies.some((body, index) => body.length !== files[index]!.stats.size)) return close();
      const cachedBody = (index: number): CachedBody => ({
        body: bodies[index]!,
        etag: etag(files[index]!.stats),
        // A sibling carries the original's Last-Modified, as streamer.py (and serve.ts) give it.
        lastModified: files[0]!.stats.mtime.toUTCString(),
      });
      const encoded = new Map<string, CachedBody>();
      request.siblings.forEach((sibling, index) => {
        if (sibling.fresh) encoded.set(sibling.coding, cachedBody(index + 1));
      });
      const file: CachedFile = {
        contentType: contentType(extname(request.namedAs)) || 'application/octet-stream',
        identity: cachedBody(0),
        encoded,
        vary: request.siblings.length > 0,
      };
      const bytes = bodies.reduce((sum, body) => sum + body.length, 0);
      return { file, bytes, checkedAt: performance.now(), watchers, recheck: request.recheck, rechecking: false, lastUsed: this.#hits };
    } catch (error: unknown) {
      close();
      throw error;
    }
  }

  #keep(key: string, entry: Entry): void {
    if (entry.bytes > this.#limits.maxBytes) {
      for (const watcher of entry.watchers) watcher.close();
      return;
    }
    this.#drop(key);
    while (this.#bytes + entry.bytes > this.#limits.maxBytes) this.#drop(this.#leastRecentlyUsed());
    this.#entries.set(key, entry);
    this.#bytes += entry.bytes;
  }

  #leastRecentlyUsed(): string {
    let oldest = '';
    let oldestUse = Infinity;
    for (const [key, entry] of this.#entries) {
      if (entry.lastUsed < oldestUse) {
        oldest = key;
        oldestUse = entry.lastUsed;
      }
    }
    return oldest;
  }

  #drop(key: string): void {
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    this.#entries.delete(key);
    this.#bytes -= entry.bytes;
    for (const watcher of entry.watchers) watcher.close();
  }
}
