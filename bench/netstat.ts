/**
 * @module bench/netstat
 * Kernel TCP counters (/proc/net/netstat) read around each load. ListenOverflows/ListenDrops
 * rise when a connection storm (wrk opening 1000 connections at once) overflows a server's
 * accept queue: the kernel drops the handshake's last ACK, the client believes it is connected,
 * and that connection (and newcomers behind it) wait for SYN-ACK retransmits, 1 s and more.
 * Such a load's figures are a coin toss, so the report flags it. The counters are
 * machine-wide: on a bench machine nothing else should be listening under load.
 */
import { readFileSync } from 'node:fs';

const WATCHED = ['ListenOverflows', 'ListenDrops', 'SyncookiesSent', 'TCPTimeouts'] as const;
export type TcpCounters = Record<(typeof WATCHED)[number], number>;

export function tcpCounters(): TcpCounters | null {
  let text: string;
  try {
    text = readFileSync('/proc/net/netstat', 'utf8');
  } catch {
    return null;
  }
  // pairs of lines: "TcpExt: Name1 Name2 ..." then "TcpExt: v1 v2 ..."
  const lines = text.split('\n').filter((l) => l.startsWith('TcpExt:'));
  const names = lines[0]?.split(/\s+/).slice(1) ?? [];
  const values = lines[1]?.split(/\s+/).slice(1) ?? [];
  const out = {} as TcpCounters;
  for (const k of WATCHED) {
    const i = names.indexOf(k);
    out[k] = i >= 0 ? Number(values[i] ?? 0) : 0;
  }
  return out;
}

export function counterDelta(before: TcpCounters | null, after: TcpCounters | null): TcpCounters | null {
  if (!before || !after) return null;
  const out = {} as TcpCounters;
  for (const k of WATCHED) out[k] = after[k] - before[k];
  return out;
}
