/**
 * @module bench/results
 * The shape of everything a run records: shared by the runner (which fills it), the report
 * (which prints it) and the JSON file (which keeps it for later comparison).
 */
import type { BulkFigures } from './bulk.js';
import type { ConnSpread } from './conns.js';
import type { CpuFigures } from './cpu.js';
import type { IdleFigures } from './idle.js';
import type { ListenQueueFigures } from './listenq.js';
import type { Machine } from './machine.js';
import type { TcpCounters } from './netstat.js';
import type { NewcomerFigures } from './newcomer.js';
import type { RateFigures } from './rate.js';
import type { RoundSpread } from './rounds.js';
import type { StopResult } from './proc.js';
import type { StatusPollFigures } from './status-poller.js';
import type { WrkFigures } from './wrk.js';

export interface LoadResult {
  load: string;
  kind: 'wrk' | 'ab' | 'idle' | 'rate' | 'h2load' | 'bulk';
  conns: number;
  durationS?: number;
  /** wrk's figures, or ab's or h2load's in the same shape (kind "ab", "h2load"). */
  wrk?: WrkFigures;
  /** The open-loop overload load. */
  rate?: RateFigures;
  newcomer?: NewcomerFigures;
  idle?: IdleFigures;
  /** A large upload or download: MB/s, checked byte counts, peak memory. */
  bulk?: BulkFigures;
  /** Kernel TCP counters' growth during the load (listen overflows: a connection storm). */
  tcp?: TcpCounters | null;
  /** The server's accept queue, sampled during the load. */
  listenQueue?: ListenQueueFigures;
  /**
   * CPU the server's processes used during the load, per answered request (loads that count
   * requests: wrk, ab, h2load, rate); ours split by role (primary, fronts, workers).
   */
  cpu?: CpuFigures;
  /** The status-cost scenario: the status page's polls during this load (loads with `statusPoll`). */
  statusPoll?: StatusPollFigures;
  /** The fronts scenario: connections per process of the server, sampled mid-load. */
  connSpread?: ConnSpread | null;
  /** The load could not be measured (wrk failed...). */
  error?: string;
  /** False if the server was found dead after this load. */
  serverAlive: boolean;
  /**
   * Set by the report only (bench/rounds.ts mergeRounds), never in the JSON: this row is the
   * median round's, and how the figure spread over the rounds.
   */
  spread?: RoundSpread;
}

export interface ServerRun {
  scenario: string;
  server: string;
  about: string;
  status: 'ok' | 'failed' | 'skipped';
  /** Why it was skipped or failed. */
  reason?: string;
  version?: string;
  cmd?: string[];
  cwd?: string;
  port?: number;
  logFile?: string;
  /** Last lines of the server's log, kept when it failed. */
  logTail?: string;
  stop?: StopResult;
  /** Share of all CPUs busy during 1 s just before the server started (others' work). */
  machineBusyBefore?: number | null;
  loads: LoadResult[];
  /** The status-cost scenario: CPU of one status page poll, on the idle server after the loads. */
  statusPollCpu?: CpuFigures;
  /**
   * Which round of its scenario this run was (1-based; bench/rounds.ts): the JSON keeps one run
   * per server and round, each a fresh instance.
   */
  round?: number;
  /** Set by the report only (mergeRounds): the rounds merged into this run, and those that failed. */
  rounds?: { total: number; failed: number[] };
}

export interface BenchOutput {
  meta: {
    started: string;
    finished?: string;
    argv: string[];
    durationS: number;
    warmupS: number;
    /** Bytes per bulk load, over all its connections (--bulk-size). */
    bulkBytes?: number;
    baseline: string;
    logDir: string;
    /** The web2py tree the web2py scenarios copied for each server, or null (skipped). */
    web2py: string | null;
    /** The command line as a user would type it. */
    command: string;
    /** Scenarios skipped as a whole, and why. */
    notes: string[];
    /**
     * Per scenario: its rounds, and the servers measured in round 1 only (peers that decide no
     * goal; bench/README.md "Rounds").
     */
    rounds?: Record<string, { rounds: number; once: string[] }>;
  };
  machine: Machine;
  /** Installed version (or why not) of every server considered. */
  versions: Record<string, string>;
  runs: ServerRun[];
}
