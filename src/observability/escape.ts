/**
 * @module Text from a worker made safe for the server log: control characters written escaped.
 *
 * A worker's output, an exception's message and its traceback are the application's bytes. Left
 * raw, terminal escapes, NUL, CR or bidi overrides in them could forge or hide log lines.
 */

/**
 * C0 controls but tab, DEL, C1 controls (0x9b is a one-byte CSI), line and paragraph separators
 * and the bidirectional overrides (which reorder what a terminal shows).
 */
const UNSAFE = /[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** `text` with every control character (newlines too) written as an escape: one line. */
export function escapeControl(text: string): string {
  return text.replace(UNSAFE, (char) => {
    const code = char.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** Like escapeControl, but the newlines stay: for a traceback, which is several lines. */
export function escapeLines(text: string): string {
  return text.split('\n').map(escapeControl).join('\n');
}
