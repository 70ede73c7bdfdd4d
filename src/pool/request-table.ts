/**
 * @module The requests a channel has in flight, by request id: a slot array indexed by id.
 *
 * Why not a Map: ids grow without end and every request adds and deletes one entry. V8's Map
 * keeps its backing store in old space and, under that churn, made every young-generation GC
 * carry megabytes of in-flight request graphs (scavenge pauses as long as a hello world's whole
 * p99: the README, "Measured, not assumed"). Here the slot of id n is `n & mask`; the channel only hands out ids whose slot is free,
 * and the table doubles before it is half full, so lookups are one array read.
 */

export class RequestTable<T> {
  private slots: (T | undefined)[];
  private ids: number[];
  private mask: number;
  private count = 0;

  constructor(initialSlots = 64) {
    let size = 1;
    while (size < initialSlots) size *= 2;
    this.slots = new Array<T | undefined>(size).fill(undefined);
    this.ids = new Array<number>(size).fill(0);
    this.mask = size - 1;
  }

  get size(): number {
    return this.count;
  }

  /** True when `id` could be added now (its slot is empty). */
  isFree(id: number): boolean {
    return this.slots[id & this.mask] === undefined;
  }

  get(id: number): T | undefined {
    const slot = id & this.mask;
    return this.ids[slot] === id ? this.slots[slot] : undefined;
  }

  /** Adds `value` under `id`, whose slot must be free (see isFree). */
  add(id: number, value: T): void {
    if ((this.count + 1) * 2 > this.slots.length) this.grow();
    const slot = id & this.mask;
    if (this.slots[slot] !== undefined) throw new Error(`request table: slot of id ${id} is taken`);
    this.slots[slot] = value;
    this.ids[slot] = id;
    this.count += 1;
  }

  delete(id: number): boolean {
    const slot = id & this.mask;
    if (this.ids[slot] !== id || this.slots[slot] === undefined) return false;
    this.slots[slot] = undefined;
    this.ids[slot] = 0;
    this.count -= 1;
    return true;
  }

  values(): T[] {
    return this.slots.filter((value): value is T => value !== undefined);
  }

  clear(): void {
    this.slots.fill(undefined);
    this.ids.fill(0);
    this.count = 0;
  }

  /** Doubles the slots; distinct ids that were apart modulo n stay apart modulo 2n. */
  private grow(): void {
    const oldSlots = this.slots;
    const oldIds = this.ids;
    const size = oldSlots.length * 2;
    this.slots = new Array<T | undefined>(size).fill(undefined);
    this.ids = new Array<number>(size).fill(0);
    this.mask = size - 1;
    for (let slot = 0; slot < oldSlots.length; slot += 1) {
      const value = oldSlots[slot];
      if (value === undefined) continue;
      const id = oldIds[slot]!;
      this.slots[id & this.mask] = value;
      this.ids[id & this.mask] = id;
    }
  }
}
