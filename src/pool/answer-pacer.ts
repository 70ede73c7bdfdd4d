/**
 * @module Whole answers go to clients at about the pace new requests come in, turn by turn.
 *
 * Why: requests that wait on I/O finish together. Dispatched in one turn, they sleep together,
 * wake in one turn of a gevent hub and come back in one frame burst, hundreds at once. Writing
 * them all in one go costs the single event loop a `writev` each, during which the clients that
 * already have their answer send their next request and it waits, unread, behind the rest of
 * the burst; and so the waves stay synchronised. What it gained in the bench's sleep scenario is
 * in the README ("Answers paced to arrivals"), where benchmark figures are kept current.
 *
 * How: `write` runs an answer now while this turn's budget lasts, else queues it (first in,
 * first out) for the next turns, which run in the check phase, after the poll phase has read
 * what clients sent. Each turn's budget is the number of requests that arrived in the previous
 * turn, and at least MIN_ANSWERS_PER_TURN: under a steady load (hello at 1,000 connections,
 * hundreds of requests a turn) answers are never held back; only a burst of answers with few
 * requests coming in is spread out.
 */
import { systemClock, type Clock } from './clock.js';

/** The least number of answers written per event-loop turn. */
export const MIN_ANSWERS_PER_TURN = 16;

export class AnswerPacer {
  private writtenThisTurn = 0;
  private arrivedThisTurn = 0;
  /** Answers this turn may write: the arrivals of the turn before, at least minPerTurn. */
  private budget: number;
  /** FIFO with a moving head: answers waiting for a later turn. */
  private waiting: ((() => void) | undefined)[] = [];
  private head = 0;
  private isTurnScheduled = false;

  constructor(
    private readonly minPerTurn = MIN_ANSWERS_PER_TURN,
    /** Where turns come from; tests pass a simulated one (clock.ts). */
    private readonly clock: Clock = systemClock,
  ) {
    this.budget = minPerTurn;
  }

  /** Answers waiting for a later turn. */
  get waitingCount(): number {
    return this.waiting.length - this.head;
  }

  /** A request arrived: the next turn may write one more answer. */
  noteArrival(): void {
    this.arrivedThisTurn += 1;
    this.scheduleTurn();
  }

  /** Writes a whole answer now, or in a later turn if this turn has written its share. */
  write(answer: () => void): void {
    if (this.waitingCount === 0 && this.writtenThisTurn < this.budget) {
      this.writtenThisTurn += 1;
      this.scheduleTurn();
      answer();
      return;
    }
    this.waiting.push(answer);
    this.scheduleTurn();
  }

  private scheduleTurn(): void {
    if (this.isTurnScheduled) return;
    this.isTurnScheduled = true;
    this.clock.nextTurn(this.nextTurn);
  }

  private readonly nextTurn = (): void => {
    this.isTurnScheduled = false;
    this.budget = Math.max(this.minPerTurn, this.arrivedThisTurn);
    this.arrivedThisTurn = 0;
    this.writtenThisTurn = 0;
    try {
      while (this.head < this.waiting.length && this.writtenThisTurn < this.budget) {
        const answer = this.waiting[this.head]!;
        this.waiting[this.head] = undefined;
        this.head += 1;
        this.writtenThisTurn += 1;
        answer();
      }
    } finally {
      // Even if an answer threw, the ones behind it still go out in later turns.
      if (this.head === this.waiting.length) {
        this.waiting = [];
        this.head = 0;
      } else {
        this.scheduleTurn();
      }
    }
  };
}
