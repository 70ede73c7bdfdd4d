/**
 * @module The messages between the primary and a front process (Node's IPC channel, JSON).
 *
 * The primary trusts no front: a front is the process that parses client bytes, so it may be
 * broken in any way. Every message from a front is checked here (`readFrontMessage`) before the
 * primary acts on it; anything else is logged and ignored. The front checks the primary's
 * messages the same way (`readPrimaryMessage`), as the cheap half of the same rule.
 */
import type { Config, SettingKey } from '../config/settings.js';
import type { Source } from '../config/load.js';
import type { PythonFacts, WorkerHandshake } from '../pool/worker.js';
import type { InheritedSocket } from '../front/listener-set.js';
import { readFrontStatus, type FrontStatus } from '../observability/status-data.js';
import { readEvent, type RealtimeEvent } from '../front/realtime/events.js';

/** Longest string of a realtime event relayed between fronts (--realtime-max-message is at most 64 MiB). */
const MAX_RELAYED_STRING = 64 * 1024 * 1024;

/** What the primary decided for the whole server, and this front's share of it. */
export interface FrontAssignment {
  /** 1-based; the index stays with the slot when a front is replaced. */
  index: number;
  fronts: number;
  /** Python worker processes of this front, and the caps of its dispatcher. */
  processes: number;
  maxInApp: number | null;
  queueSize: number;
  listeners: InheritedSocket[];
  python: PythonFacts;
  app: { spec: WorkerHandshake['app']; hasRoutes: boolean; detail: string };
  /** The same for every front of this server, different for every server: realtime events from Redis that carry it are this server's own. */
  instanceId: string;
}

export type PrimaryMessage =
  | { type: 'start'; config: Config; sources: Record<SettingKey, Source>; assignment: FrontAssignment }
  /** Graceful stop (SIGTERM, or the old front of a rolling replace). */
  | { type: 'stop'; signal: string; handOver: boolean }
  /** SIGUSR1: reopen the access log. */
  | { type: 'reopen-logs' }
  /** Send this front's metrics (prom-client JSON) back with `id`. */
  | { type: 'collect-metrics'; id: number }
  /** The whole server's metrics, in Prometheus text, for the front's pending `/metrics` answer `id`. */
  | { type: 'metrics'; id: number; text: string | null }
  /**
   * Send this front's part of the status page back with `id`, with the history's seconds after
   * `historySince` only (an epoch second; 0: all): the primary keeps the earlier ones.
   */
  | { type: 'collect-status'; id: number; historySince: number }
  /** The whole server's status (JSON text of a ServerStatus) for the front's pending `/status.json` answer `id`. */
  | { type: 'status'; id: number; json: string | null }
  /** A realtime event another front published (relayed to every front but its sender). */
  | { type: 'realtime'; payload: RealtimeEvent }
  /** Realtime event `id` of this front was handed to every other front. */
  | { type: 'realtime-relayed'; id: number };

export type FrontMessage =
  /** Listening on every inherited socket (its workers are starting). */
  | { type: 'listening' }
  /** Started: listening and workers ready; `lines` are its start-up lines for the console. */
  | { type: 'ready'; lines: string[] }
  /** Could not start: one line (the error's message and code) and the exit status it asks for. */
  | { type: 'fatal'; line: string; exitCode: number }
  /** The process ids of its Python workers now (the primary kills them if the front dies). */
  | { type: 'worker-pids'; pids: number[] }
  /** A `/metrics` request arrived: the primary gathers every front's and answers with `metrics`. */
  | { type: 'metrics-wanted'; id: number }
  /** This front's answer to `collect-metrics`. */
  | { type: 'metrics-collected'; id: number; metrics: unknown[] }
  /** A `/status.json` request arrived: the primary gathers every front's part and answers with `status`. */
  | { type: 'status-wanted'; id: number }
  /** This front's answer to `collect-status` (null: it has none to give). */
  | { type: 'status-collected'; id: number; status: FrontStatus | null }
  /** A realtime event for the other fronts; answered `realtime-relayed` with `id`. */
  | { type: 'realtime'; id: number; payload: RealtimeEvent };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;

/** A front's message, or null when it is not one the primary knows. */
export function readFrontMessage(raw: unknown): FrontMessage | null {
  if (!isRecord(raw)) return null;
  switch (raw.type) {
    case 'listening':
      return { type: 'listening' };
    case 'ready':
      return Array.isArray(raw.lines) && raw.lines.every((line) => typeof line === 'string') ? { type: 'ready', lines: raw.lines as string[] } : null;
    case 'fatal':
      return typeof raw.line === 'string' && isCount(raw.exitCode) ? { type: 'fatal', line: raw.line, exitCode: raw.exitCode } : null;
    case 'worker-pids':
      return Array.isArray(raw.pids) && raw.pids.every((pid) => isCount(pid) && pid > 1) ? { type: 'worker-pids', pids: raw.pids as number[] } : null;
    case 'metrics-wanted':
      return isCount(raw.id) ? { type: 'metrics-wanted', id: raw.id } : null;
    case 'metrics-collected':
      return isCount(raw.id) && Array.isArray(raw.metrics) ? { type: 'metrics-collected', id: raw.id, metrics: raw.metrics as unknown[] } : null;
    case 'status-wanted':
      return isCount(raw.id) ? { type: 'status-wanted', id: raw.id } : null;
    case 'status-collected':
      return isCount(raw.id) ? { type: 'status-collected', id: raw.id, status: readFrontStatus(raw.status) } : null;
    case 'realtime': {
      const payload = readEvent(raw.payload, MAX_RELAYED_STRING);
      return isCount(raw.id) && payload !== null ? { type: 'realtime', id: raw.id, payload } : null;
    }
    default:
      return null;
  }
}

/** The primary's message, or null when it is not one the front knows. */
export function readPrimaryMessage(raw: unknown): PrimaryMessage | null {
  if (!isRecord(raw)) return null;
  switch (raw.type) {
    case 'start':
      return isRecord(raw.config) && isRecord(raw.sources) && isRecord(raw.assignment) ? raw as PrimaryMessage : null;
    case 'stop':
      return typeof raw.signal === 'string' ? { type: 'stop', signal: raw.signal, handOver: raw.handOver === true } : null;
    case 'reopen-logs':
      return { type: 'reopen-logs' };
    case 'collect-metrics':
      return isCount(raw.id) ? { type: 'collect-metrics', id: raw.id } : null;
    case 'metrics':
      return isCount(raw.id) && (typeof raw.text === 'string' || raw.text === null) ? { type: 'metrics', id: raw.id, text: raw.text } : null;
    case 'collect-status':
      return isCount(raw.id) && isCount(raw.historySince) ? { type: 'collect-status', id: raw.id, historySince: raw.historySince } : null;
    case 'status':
      return isCount(raw.id) && (typeof raw.json === 'string' || raw.json === null) ? { type: 'status', id: raw.id, json: raw.json } : null;
    case 'realtime': {
      const payload = readEvent(raw.payload, MAX_RELAYED_STRING);
      return payload === null ? null : { type: 'realtime', payload };
    }
    case 'realtime-relayed':
      return isCount(raw.id) ? { type: 'realtime-relayed', id: raw.id } : null;
    default:
      return null;
  }
}
