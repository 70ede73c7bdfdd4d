/**
 * @module The one line a fatal error prints, and the exit status it asks for.
 *
 * Shared by the primary (errors of its own) and the fronts (errors found while starting, sent to
 * the primary, which prints them): the operator sees the same line whichever process found it.
 */
import { isServerError, ReportedFatal } from '../errors/index.js';

export function describeFatal(error: unknown): { line: string; exitCode: number } {
  if (error instanceof ReportedFatal) return { line: error.line, exitCode: error.exitCode };
  if (isServerError(error)) return { line: `web2py-on-node: error: ${error.message} [${error.code}]`, exitCode: error.exitCode ?? 1 };
  return { line: `web2py-on-node: internal error: ${error instanceof Error ? error.stack ?? error.message : String(error)}`, exitCode: 1 };
}
