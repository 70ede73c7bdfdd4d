/**
 * @module Groups of connected members, broadcast to a group, presence notices, slow consumers.
 *
 * No sockets here: a member is anything that can send text and say how much it has not sent
 * yet, so broadcasting is tested with plain objects. A member whose unsent bytes passed the
 * send buffer limit is a slow consumer: it is closed (1013, try again later) instead of growing
 * the front's memory, and the broadcast goes on to the others. A member that is closing is
 * skipped: in web2py's server its write raised and every member after it missed the message.
 */
import { joinNotice, leaveNotice } from './wire.js';

export interface Member {
  readonly group: string;
  readonly name: string;
  /** Bytes handed to send() and not yet written to the socket. */
  readonly bufferedAmount: number;
  readonly isOpen: boolean;
  send(data: Buffer): void;
  /** Closes it as a slow consumer. */
  dropSlow(): void;
}

export interface BroadcastCounts {
  delivered: number;
  dropped: number;
}

export class Groups {
  private readonly groups = new Map<string, Set<Member>>();

  constructor(private readonly sendBufferBytes: number, private readonly hasPresence: boolean) {}

  /** Seats `member`; the others of its group get `+name` first (as web2py: not the newcomer). */
  join(member: Member): BroadcastCounts {
    let group = this.groups.get(member.group);
    if (group === undefined) {
      group = new Set();
      this.groups.set(member.group, group);
    }
    const counts = this.hasPresence ? this.broadcast(member.group, joinNotice(member.name)) : { delivered: 0, dropped: 0 };
    group.add(member);
    return counts;
  }

  /** Unseats `member` (idempotent); the others get `-name`. */
  leave(member: Member): BroadcastCounts {
    const group = this.groups.get(member.group);
    if (group === undefined || !group.delete(member)) return { delivered: 0, dropped: 0 };
    if (group.size === 0) this.groups.delete(member.group);
    return this.hasPresence ? this.broadcast(member.group, leaveNotice(member.name)) : { delivered: 0, dropped: 0 };
  }

  /** Whether presence notices are sent (so the caller fans them out to other fronts too). */
  get sendsPresence(): boolean {
    return this.hasPresence;
  }

  /** Sends `text` to every open member of `group` on this front. */
  broadcast(groupName: string, text: string): BroadcastCounts {
    const group = this.groups.get(groupName);
    const counts = { delivered: 0, dropped: 0 };
    if (group === undefined) return counts;
    // Encoded once for every member (ws would encode a string once per send).
    const data = Buffer.from(text, 'utf8');
    for (const member of group) {
      if (!member.isOpen) continue;
      if (member.bufferedAmount > this.sendBufferBytes) {
        // Closing makes it not open: skipped from now on, unseated (with its `-name`) when closed.
        counts.dropped += 1;
        member.dropSlow();
        continue;
      }
      member.send(data);
      counts.delivered += 1;
    }
    return counts;
  }

  get memberCount(): number {
    let count = 0;
    for (const group of this.groups.values()) count += group.size;
    return count;
  }

  /** Every member, for closing them all at stop. */
  *members(): Iterable<Member> {
    for (const group of this.groups.values()) yield* group;
  }
}
