/**
 * @module Join tokens (`--realtime-tokens`): armed by a signed POST, held by one connection, then gone.
 *
 * web2py's server keeps every token forever and re-arms one that is in use when it is posted
 * again, so two browsers could share it. Here a token is armed for `ttlMs` (an unused one
 * expires), taken by exactly one connection, refused to any other while held, and forgotten
 * when that connection closes; posting it again while held is refused (409). The table is
 * bounded: past `maxTokens` armed tokens, the oldest is dropped.
 */

export type TokenArm = 'armed' | 'in-use';

export class Tokens {
  /** Armed tokens and when each expires (insertion order = age, for the cap). */
  private readonly armed = new Map<string, number>();
  private readonly held = new Set<string>();

  constructor(private readonly ttlMs: number, private readonly maxTokens: number, private readonly now: () => number = Date.now) {}

  arm(token: string): TokenArm {
    if (this.held.has(token)) return 'in-use';
    this.armed.delete(token);
    this.armed.set(token, this.now() + this.ttlMs);
    while (this.armed.size > this.maxTokens) this.armed.delete(this.armed.keys().next().value!);
    return 'armed';
  }

  /** Takes an armed, unexpired token for one connection; false when it is unknown, expired or held. */
  take(token: string): boolean {
    const expiry = this.armed.get(token);
    if (expiry === undefined) return false;
    this.armed.delete(token);
    if (expiry < this.now()) return false;
    this.held.add(token);
    return true;
  }

  /** Another front or instance took it: it is not armed here any more. */
  forget(token: string): void {
    this.armed.delete(token);
  }

  /** Another front or instance holds it now. */
  hold(token: string): void {
    this.held.add(token);
  }

  /** Its connection closed. */
  release(token: string): void {
    this.held.delete(token);
  }

  /** Drops expired tokens (called on a timer). */
  sweep(): void {
    const now = this.now();
    for (const [token, expiry] of this.armed) if (expiry < now) this.armed.delete(token);
  }

  get size(): number {
    return this.armed.size + this.held.size;
  }
}
