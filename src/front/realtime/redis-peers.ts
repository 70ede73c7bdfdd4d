/**
 * @module `--realtime-redis`: the hub's events to and from every other instance, over Redis pub/sub.
 *
 * ioredis (two connections: a subscriber cannot publish) was chosen over node-redis for its
 * reconnection with a backoff of our choosing and its automatic re-subscription after a
 * reconnect. Every front of an instance subscribes, so a message from another instance reaches
 * each front's own members once. An instance's events reach its other fronts through the
 * primary (sibling-peers.ts), so each front ignores those that carry its own instance's id:
 * nothing is delivered twice.
 *
 * While Redis is down, publishing to it fails at once (the offline queue is off: a queue would
 * grow without bound during an outage and deliver stale messages after it); local delivery goes
 * on. One log line when the connection is lost, one when it is back; a metric counts outages.
 */
import { Redis } from 'ioredis';
import { LogEvents } from '../../observability/events.js';
import type { Logger } from '../../observability/log.js';
import type { RealtimeCounters } from '../../observability/metrics.js';
import { readEvent, type Peers, type RealtimeEvent } from './events.js';

export const REDIS_CHANNEL = 'web2py-on-node:realtime';
/** Reconnection backoff: 100 ms, doubling, at most this. */
const MAX_RETRY_DELAY_MS = 5_000;

export interface RedisPeersOptions {
  url: string;
  /** The same for every front of this instance, different for every instance. */
  instanceId: string;
  maxStringLength: number;
  log: Logger;
  counters: RealtimeCounters;
  onEvent: (event: RealtimeEvent) => void;
}

export class RedisPeers implements Peers {
  private readonly publisher: Redis;
  private readonly subscriber: Redis;
  private isUp = false;
  /** The subscriber's SUBSCRIBE was answered on its current connection. */
  private isSubscribed = false;
  private hasBeenUp = false;
  private isInOutage = false;

  constructor(private readonly options: RedisPeersOptions) {
    const common = {
      lazyConnect: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: (times: number) => Math.min(100 * 2 ** Math.min(times, 10), MAX_RETRY_DELAY_MS),
    };
    this.publisher = new Redis(options.url, common);
    // Subscribed anew on each connection, and only then up: "connected" in the log means
    // messages from other instances arrive from now on.
    this.subscriber = new Redis(options.url, { ...common, autoResubscribe: false });
    for (const client of [this.publisher, this.subscriber]) {
      client.on('error', (error: Error) => this.down(error.message));
      client.on('close', () => this.down('connection closed'));
    }
    this.publisher.on('ready', () => this.up());
    this.subscriber.on('ready', () => {
      this.subscriber.subscribe(REDIS_CHANNEL).then(() => {
        this.isSubscribed = true;
        this.up();
      }, (error: unknown) => this.down(error instanceof Error ? error.message : String(error)));
    });
    this.subscriber.on('message', (_channel: string, text: string) => this.receive(text));
  }

  /** 1 while both connections are ready, else 0 (for the gauge). */
  get state(): number {
    return this.isUp ? 1 : 0;
  }

  send(event: RealtimeEvent): Promise<void> {
    if (!this.isUp) return Promise.resolve();
    return this.publisher.publish(REDIS_CHANNEL, JSON.stringify({ o: this.options.instanceId, e: event })).then(() => undefined, () => undefined);
  }

  async close(): Promise<void> {
    this.isInOutage = true; // no outage line for our own disconnect
    this.publisher.disconnect();
    this.subscriber.disconnect();
    await Promise.resolve();
  }

  private receive(text: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return;
    }
    if (typeof parsed !== 'object' || parsed === null) return;
    const { o, e } = parsed as { o?: unknown; e?: unknown };
    if (o === this.options.instanceId) return;
    const event = readEvent(e, this.options.maxStringLength);
    if (event === null) return;
    this.options.counters.received('redis');
    this.options.onEvent(event);
  }

  private up(): void {
    if (this.publisher.status !== 'ready' || !this.isSubscribed) return;
    this.isUp = true;
    const afterOutage = this.isInOutage;
    if (!this.hasBeenUp || afterOutage) LogEvents.realtimeRedisUp(this.options.log, { afterOutage });
    this.hasBeenUp = true;
    this.isInOutage = false;
  }

  private down(reason: string): void {
    this.isUp = false;
    if (this.subscriber.status !== 'ready') this.isSubscribed = false;
    if (this.isInOutage) return;
    this.isInOutage = true;
    this.options.counters.redisOutage();
    LogEvents.realtimeRedisDown(this.options.log, { reason });
  }
}
