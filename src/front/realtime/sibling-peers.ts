/**
 * @module The hub's events to and from the other fronts of this instance, through the primary.
 *
 * With `--fronts N`, a browser's WebSocket and the application's publish POST may land on
 * different fronts. Every event goes to the primary over the front's IPC channel; the primary
 * hands it to every other front and then tells the sender it did. A publish POST is answered
 * only after that, so once `websocket_send` returns, every front has the message (or the token).
 * No Redis is needed within one instance; the primary only relays (it checks each event's
 * shape, as every message from a front, and never reads client bytes).
 */
import type { Peers, RealtimeEvent } from './events.js';

/** How long a relay may take before the publish is answered anyway (a primary that is gone). */
const RELAY_WAIT_MS = 2_000;

/** The IPC channel, as cli/front.ts offers it. */
export interface SiblingLink {
  /** Sends `event` to the primary with `id`; `relayed(id)` is called back when its answer comes. */
  send(id: number, event: RealtimeEvent): void;
}

export class SiblingPeers implements Peers {
  private readonly waiting = new Map<number, () => void>();
  private nextId = 1;

  constructor(private readonly link: SiblingLink) {}

  send(event: RealtimeEvent): Promise<void> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.relayed(id), RELAY_WAIT_MS);
      timer.unref();
      this.waiting.set(id, () => {
        clearTimeout(timer);
        resolve();
      });
      this.link.send(id, event);
    });
  }

  /** The primary's answer for `id`. */
  relayed(id: number): void {
    const done = this.waiting.get(id);
    this.waiting.delete(id);
    done?.();
  }

  async close(): Promise<void> {
    for (const id of [...this.waiting.keys()]) this.relayed(id);
    await Promise.resolve();
  }
}
