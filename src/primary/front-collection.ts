/**
 * @module Asking every live front for something and waiting for their answers, within a limit.
 *
 * /metrics and /status.json reach one front, which asks the primary; the primary asks every
 * live front (`ask`), gathers what each sends back (`answered`) and goes on with what it has
 * once all answered or WAIT_MS passed: a front that does not answer (stuck, dying) is left out
 * rather than holding the scrape or the page.
 */
import type { FrontProcess } from './front-process.js';

const WAIT_MS = 1_000;

interface Collection<T> {
  waiting: Set<FrontProcess>;
  gathered: T[];
  finish: () => void;
}

export class FrontCollection<T> {
  private readonly collections = new Map<number, Collection<T>>();
  private nextId = 1;

  constructor(private readonly liveFronts: () => FrontProcess[], private readonly ask: (front: FrontProcess, id: number) => void) {}

  /** What every ready (or stopping) front answered, plus `own` first. */
  async gather(own: T[] = []): Promise<T[]> {
    const id = this.nextId++;
    const fronts = this.liveFronts().filter((front) => front.state === 'ready' || front.state === 'stopping');
    const gathered = [...own];
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => finish(), WAIT_MS);
      const finish = (): void => {
        clearTimeout(timer);
        this.collections.delete(id);
        resolve();
      };
      this.collections.set(id, { waiting: new Set(fronts), gathered, finish });
      if (fronts.length === 0) finish();
      for (const front of fronts) this.ask(front, id);
    });
    return gathered;
  }

  /** A front's answer to collection `id` (null: it had nothing to give). */
  answered(front: FrontProcess, id: number, value: T | null): void {
    const collection = this.collections.get(id);
    if (collection === undefined || !collection.waiting.delete(front)) return;
    if (value !== null) collection.gathered.push(value);
    if (collection.waiting.size === 0) collection.finish();
  }
}
