/**
 * WebSocket members and publishers for the realtime hub's tests: a member records what it
 * receives and how it closed, and can wait for a count of messages (no sleeps).
 */
import { createHmac } from 'node:crypto';
import { WebSocket } from 'ws';

export interface TestMember {
  ws: WebSocket;
  messages: string[];
  /** Resolves with the close code once the connection is closed. */
  closed: Promise<number>;
  /** Resolves once `count` messages arrived (rejects after `timeoutMs`, with what did). */
  received(count: number, timeoutMs?: number): Promise<string[]>;
  /** Resolves once `isDone(messages)` (rejects after `timeoutMs`). */
  receivedUntil(isDone: (messages: string[]) => boolean, timeoutMs?: number): Promise<string[]>;
}

export function sign(message: string, key: string): string {
  return createHmac('md5', key).update(message).digest('hex');
}

/** Joins at `url`; resolves once open, rejects with the HTTP status of a refused handshake. */
export function join(url: string, options: { origin?: string } = {}): Promise<TestMember> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options.origin === undefined ? {} : { origin: options.origin });
    const messages: string[] = [];
    let wake: () => void = () => {};
    ws.on('message', (data) => {
      messages.push(String(data));
      wake();
    });
    const closed = new Promise<number>((done) => ws.on('close', (code) => { done(code); wake(); }));
    ws.on('error', () => {});
    ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`refused ${res.statusCode}`), { status: res.statusCode })));
    const receivedUntil = async (isDone: (messages: string[]) => boolean, timeoutMs = 10_000): Promise<string[]> => {
      const deadline = Date.now() + timeoutMs;
      while (!isDone(messages)) {
        if (Date.now() > deadline) throw new Error(`not yet after ${messages.length} messages: ${JSON.stringify(messages.slice(-5))}`);
        await Promise.race([new Promise<void>((r) => { wake = r; }), new Promise((r) => setTimeout(r, 100))]);
      }
      return messages;
    };
    ws.once('open', () => resolve({
      ws, messages, closed, receivedUntil,
      received: (count, timeoutMs) => receivedUntil((got) => got.length >= count, timeoutMs),
    }));
  });
}

/** A publish POST as websocket_send makes it; the answer's status. */
export async function publish(url: string, message: string, key: string | null, group?: string): Promise<number> {
  const fields: Record<string, string> = { message, signature: key === null ? '' : sign(message, key) };
  if (group !== undefined) fields.group = group;
  const response = await fetch(url, { method: 'POST', body: new URLSearchParams(fields) });
  await response.arrayBuffer();
  return response.status;
}

/** Reads one counter or gauge from /metrics (summing its label sets that match `labels`). */
export async function metric(url: string, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(url)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== ' ' && line[name.length] !== '{')) continue;
    if (labels !== '' && !line.includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
