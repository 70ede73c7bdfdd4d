/**
 * The server under test: the real CLI with a plain and a TLS listener (ports chosen by the
 * kernel), its process tree read from /proc (the front may be one process or a primary and front
 * children: every node process of the tree is measured), and the health checks.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { connect as http2Connect } from 'node:http2';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

export const repoRoot = join(import.meta.dirname, '..');
const binPath = join(repoRoot, 'bin', 'web2py-on-node');
const fixtures = join(repoRoot, 'test', 'fixtures');

export type TargetKind = 'app' | 'web2py';
export const TARGET_KINDS: readonly TargetKind[] = ['app', 'web2py'];

export interface Ports { plain: number; tls: number }

/** A self-signed EC certificate (fast handshakes), made once per process by openssl. */
let certificate: { dir: string; cert: string; key: string } | undefined;
function makeCertificate(): { dir: string; cert: string; key: string } {
  if (certificate !== undefined) return certificate;
  const dir = mkdtempSync(join(tmpdir(), 'w2n-fuzz-tls-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert,
    '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
  certificate = { dir, cert, key };
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return certificate;
}

export interface ProcessUsage { pid: number; comm: string; fds: number; rssKiB: number }

/** Parent of each process, from /proc/<pid>/stat (the comm field may hold spaces and parentheses). */
function parents(): Map<number, { ppid: number; comm: string }> {
  const out = new Map<number, { ppid: number; comm: string }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const ppid = Number(stat.slice(close + 2).split(' ')[1]);
      out.set(Number(name), { ppid, comm });
    } catch { /* gone meanwhile */ }
  }
  return out;
}

/** `root` and its descendants. */
export function processTree(root: number): { pid: number; comm: string }[] {
  const table = parents();
  const tree: { pid: number; comm: string }[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    const entry = table.get(pid);
    if (entry === undefined) continue;
    tree.push({ pid, comm: entry.comm });
    for (const [child, { ppid }] of table) if (ppid === pid) queue.push(child);
  }
  return tree;
}

function isNode(pid: number, comm: string): boolean {
  try {
    return basename(readlinkSync(`/proc/${pid}/exe`)).startsWith('node');
  } catch {
    return comm.startsWith('node');
  }
}

function usageOf(pid: number, comm: string): ProcessUsage | null {
  try {
    const fds = readdirSync(`/proc/${pid}/fd`).length;
    const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return { pid, comm, fds, rssKiB: Number(rss?.[1] ?? 0) };
  } catch {
    return null;
  }
}

export interface Usage { fds: number; rssKiB: number; nodes: ProcessUsage[]; workers: number[] }

/** TCP sockets by inode: state (hex, as /proc/net/tcp: 08 = CLOSE_WAIT) and the peer's port. */
export function tcpSockets(): Map<string, { state: string; remotePort: number }> {
  const out = new Map<string, { state: string; remotePort: number }>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try { text = readFileSync(table, 'latin1'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      out.set(f[9]!, { state: f[3]!, remotePort: parseInt(f[2]!.split(':')[1]!, 16) });
    }
  }
  return out;
}

/** Socket inodes process `pid` holds. */
export function socketInodes(pid: number): string[] {
  const out: string[] = [];
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) out.push(m[1]!);
      } catch { /* closed meanwhile */ }
    }
  } catch { /* gone */ }
  return out;
}

export class Target {
  child: ChildProcess | null = null;
  ports: Ports = { plain: 0, tls: 0 };
  private stderrText = '';
  private folder: string | null = null;
  exited = false;

  constructor(readonly kind: TargetKind, readonly extraArgs: readonly string[] = []) {}

  /** The path a health check asks for (200 from the application). */
  get healthPath(): string {
    return this.kind === 'app' ? '/' : '/welcome/static/css/web2py.css';
  }

  /** Paths the generators aim at. */
  get paths(): readonly string[] {
    return this.kind === 'app'
      ? ['/', '/x', '/a/b/c?d=e', '/welcome/static/css/web2py.css']
      : ['/welcome/default/index', '/welcome/static/css/web2py.css', '/welcome/static/js/app.js', '/env', '/body', '/', '/welcome/static/missing.css', '/admin/static/x'];
  }

  stderrTail(chars = 4000): string {
    return this.stderrText.slice(-chars);
  }

  async start(): Promise<void> {
    const { cert, key } = makeCertificate();
    const common = ['--processes', '1', '--interfaces', `127.0.0.1:0;127.0.0.1:0:${key}:${cert}`];
    let args: string[];
    if (this.kind === 'app') {
      args = ['--app', 'echo:app', '-f', join(fixtures, 'apps')];
    } else {
      this.folder ??= mkdtempSync(join(tmpdir(), 'w2n-fuzz-web2py-'));
      if (!existsSync(join(this.folder, 'gluon'))) cpSync(join(fixtures, 'web2py'), this.folder, { recursive: true });
      args = ['-f', this.folder, '--static-offload', 'on', '-a', 'fuzz-password'];
    }
    const child = spawn(process.execPath, [binPath, ...common, ...args, ...this.extraArgs], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.exited = false;
    this.stderrText = '';
    let stdout = '';
    child.stdout!.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr!.on('data', (c: Buffer) => { this.stderrText = (this.stderrText + c.toString()).slice(-200_000); });
    child.on('exit', () => { this.exited = true; });
    const deadline = Date.now() + 30_000;
    while (!/^access log: /m.test(stdout)) {
      if (this.exited) throw new Error(`server exited before ready:\n${stdout}\n${this.stderrText}`);
      if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`server not ready in time:\n${stdout}\n${this.stderrText}`); }
      await new Promise((r) => setTimeout(r, 50));
    }
    const ports = [...stdout.matchAll(/starting on \S+:(\d+)\.\.\./g)].map((m) => Number(m[1]));
    if (ports.length < 2) throw new Error(`expected two "starting on" lines:\n${stdout}`);
    this.ports = { plain: ports[0]!, tls: ports[1]! };
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child === null) return;
    this.child = null;
    if (!this.exited) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
      await gone;
      clearTimeout(timer);
    }
  }

  async restart(): Promise<void> {
    // A dead front may leave its workers or children: kill the whole tree first.
    const pid = this.child?.pid;
    if (pid !== undefined) for (const { pid: p } of processTree(pid).reverse()) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
    await this.stop();
    await this.start();
  }

  dispose(): void {
    if (this.folder !== null) rmSync(this.folder, { recursive: true, force: true });
  }

  /** File descriptors and RSS of every node process of the tree; pids of the other (worker) processes. */
  usage(): Usage {
    const pid = this.child?.pid;
    if (pid === undefined) return { fds: 0, rssKiB: 0, nodes: [], workers: [] };
    const tree = processTree(pid);
    const nodes = tree.filter(({ pid: p, comm }) => isNode(p, comm)).map(({ pid: p, comm }) => usageOf(p, comm)).filter((u): u is ProcessUsage => u !== null);
    const workers = tree.filter(({ pid: p, comm }) => !isNode(p, comm)).map(({ pid: p }) => p);
    return { fds: nodes.reduce((n, u) => n + u.fds, 0), rssKiB: nodes.reduce((n, u) => n + u.rssKiB, 0), nodes, workers };
  }

  /** Sockets of the node processes in CLOSE_WAIT (the client closed, the server has not): inode and the client's port. */
  closeWaits(): Map<string, number> {
    const tcp = tcpSockets();
    const out = new Map<string, number>();
    for (const node of this.usage().nodes) {
      for (const inode of socketInodes(node.pid)) {
        const entry = tcp.get(inode);
        if (entry !== undefined && entry.state === '08') out.set(inode, entry.remotePort);
      }
    }
    return out;
  }

  /** Null when the server answers a plain GET on both listeners (HTTP/1.1 plain, HTTP/1.1 over TLS, HTTP/2 over TLS); else what failed. */
  async health(timeoutMs = 10_000): Promise<string | null> {
    if (this.exited) return 'server process exited';
    const results = await Promise.all([
      http1Get(this.ports.plain, this.healthPath, false, timeoutMs).then((r) => r === null ? null : `plain HTTP/1.1: ${r}`),
      http1Get(this.ports.tls, this.healthPath, true, timeoutMs).then((r) => r === null ? null : `TLS HTTP/1.1: ${r}`),
      h2Get(this.ports.tls, this.healthPath, timeoutMs).then((r) => r === null ? null : `TLS HTTP/2: ${r}`),
    ]);
    const failed = results.filter((r) => r !== null);
    if (this.exited) return 'server process exited';
    return failed.length === 0 ? null : failed.join('; ');
  }
}

/** GET `path` with Connection: close; null when a 200 comes back whole. */
function http1Get(port: number, path: string, tls: boolean, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = tls
      ? tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
      : netConnect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let settled = false;
    const done = (result: string | null): void => { if (!settled) { settled = true; clearTimeout(timer); socket.destroy(); resolve(result); } };
    const timer = setTimeout(() => done(`no answer in ${timeoutMs} ms (got ${JSON.stringify(Buffer.concat(chunks).toString('latin1').slice(0, 80))})`), timeoutMs);
    socket.once(tls ? 'secureConnect' : 'connect', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (e) => done(`error ${e.message}`));
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      done(/^HTTP\/1\.1 200 /.test(text) ? null : `answer ${JSON.stringify(text.slice(0, 40))}...${JSON.stringify(text.slice(text.indexOf('\r\n\r\n') + 4).slice(0, 160))}`);
    });
  });
}

function h2Get(port: number, path: string, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const session = http2Connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false, servername: 'localhost' });
    let settled = false;
    const done = (result: string | null): void => { if (!settled) { settled = true; clearTimeout(timer); session.destroy(); resolve(result); } };
    const timer = setTimeout(() => done(`no answer in ${timeoutMs} ms`), timeoutMs);
    session.on('error', (e) => done(`error ${e.message}`));
    const stream = session.request({ ':path': path });
    let status = 0;
    stream.on('response', (headers) => { status = Number(headers[':status']); });
    stream.on('data', () => {});
    stream.on('end', () => done(status === 200 ? null : `status ${status}`));
    stream.on('error', (e) => done(`stream error ${e.message}`));
  });
}
