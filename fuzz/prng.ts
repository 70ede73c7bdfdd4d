/** mulberry32: a tiny seeded PRNG, so every case is reproducible from (seed, class, index). */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** The PRNG of case `index` of `klass` in the run with `seed`: independent of the other cases. */
  static forCase(seed: number, klass: string, index: number): Rng {
    let h = 2166136261 ^ (seed >>> 0);
    for (const ch of `${klass}#${index}`) h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
    h = Math.imul(h ^ (h >>> 15), 2246822507) ^ (seed * 31 + index);
    return new Rng(h >>> 0);
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from nothing');
    return items[this.int(items.length)]!;
  }

  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }

  /** A length near `limit`: just under, at, or just past it. */
  near(limit: number): number {
    return Math.max(0, limit + this.pick([-2, -1, 0, 0, 1, 2, this.range(-64, 64)]));
  }
}
