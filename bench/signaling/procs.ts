/**
 * Child processes of the bench (servers under test, load generators) and what /proc says
 * about them. Every child is bounded in time twice: servers run under coreutils `timeout`
 * (a hard kill even if the orchestrator itself is killed), load generators carry their own
 * watchdog and leave when the IPC channel closes; and the orchestrator kills whatever is
 * left on exit.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import { freePort } from '../../testkit/ports.ts';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createInterface } from 'node:readline';
import type { Command, CommandName, Reply, ResultMap } from './ipc.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Nodes under test run the compiled server, as production does (`npm run build:server`). */
const BLOCKRTC_BIN = `${ROOT}dist/server/main.js`;
let built = false;
/** Compiles the server once per bench run, so the nodes run the code of this checkout. */
function ensureServerBuilt(): void {
  if (built) return;
  execFileSync(process.execPath, [`${ROOT}cli/build.mjs`], { stdio: 'ignore' });
  built = true;
}
const RUN_TS = `${ROOT}bin/run-ts.mjs`;
const LOADGEN = `${ROOT}bench/signaling/loadgen.ts`;
const BARE_WS = `${ROOT}bench/signaling/bare-ws.ts`;
const GC_HOOK = `${ROOT}bench/signaling/gc-on-signal.mjs`;
/** Every server under test can be asked for a full GC (SIGUSR2); see gc-on-signal.mjs. */
const GC_ARGS = ['--expose-gc', '--import', pathToFileURL(GC_HOOK).href];

export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

const live = new Set<ChildProcess>();
/** Servers (grandchildren, under `timeout`) by pid, with their start time. */
const servers = new Map<number, string>();

/** Field 22 of /proc/<pid>/stat: together with the pid it names one process, never a later one. */
function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function killServer(pid: number): void {
  // Only the very process we started: a pid can be reused once it has exited.
  if (startTime(pid) !== servers.get(pid)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Kills every child still running (synchronous: usable from an 'exit' handler). */
export function killAll(): void {
  for (const p of live) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const pid of servers.keys()) killServer(pid);
  live.clear();
  servers.clear();
}

function track(p: ChildProcess, maxLifeMs: number): Promise<number | null> {
  live.add(p);
  const exited = new Promise<number | null>((resolve) => p.once('exit', (code) => resolve(code)));
  const watchdog = setTimeout(() => p.kill('SIGKILL'), maxLifeMs);
  watchdog.unref();
  void exited.then(() => {
    clearTimeout(watchdog);
    live.delete(p);
  });
  return exited;
}

export interface ServerProcess {
  label: string;
  url: string;
  /** Where it serves /metrics: METRICS_PORT for a BlockRTC node, its one port for the bare server. */
  metricsUrl: string;
  /** The Node process serving (child of `timeout`): the one whose memory is measured. */
  pid: number;
  logs: string[];
  exited: Promise<number | null>;
  /** Asks for a full garbage collection and gives it time to finish. */
  gc(): Promise<void>;
  /** SIGTERM (the node drains), SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

async function childPid(parent: number, timeoutMs = 10_000): Promise<number> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    try {
      const kids = readFileSync(`/proc/${parent}/task/${parent}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
      if (kids[0]) return kids[0];
    } catch {
      // not there yet
    }
    await sleep(20);
  }
  throw new Error(`no child process under ${parent}`);
}

async function waitReady(url: string, logs: string[], exited: Promise<number | null>, timeoutMs = 30_000): Promise<void> {
  let gone: number | null | undefined;
  void exited.then((c) => (gone = c));
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (gone !== undefined) throw new Error(`server exited with ${gone}:\n${logs.slice(-20).join('\n')}`);
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`server at ${url} not ready in ${timeoutMs} ms:\n${logs.slice(-20).join('\n')}`);
}

/**
 * Starts `node <script> [args]` under `timeout -s KILL`, on a chosen port, and waits for
 * /readyz. LOG_LEVEL=warn keeps the node quiet, so readiness is polled instead of read
 * from a "listening" log line.
 */
async function startServer(label: string, args: string[], env: Record<string, string>, maxLifeMs: number, separateMetrics: boolean): Promise<ServerProcess> {
  const port = await freePort();
  const metricsPort = separateMetrics ? await freePort() : port;
  const proc = spawn('timeout', ['-s', 'KILL', String(Math.ceil(maxLifeMs / 1000)), process.execPath, ...GC_ARGS, ...args], {
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: String(port), ...(separateMetrics ? { METRICS_PORT: String(metricsPort) } : {}), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = track(proc, maxLifeMs + 5000);
  const logs: string[] = [];
  const keep = (l: string) => {
    if (serverLogFile) appendFileSync(serverLogFile, `${label} ${l}\n`);
    logs.push(l);
    if (logs.length > 200) logs.shift();
  };
  createInterface({ input: proc.stdout! }).on('line', keep);
  createInterface({ input: proc.stderr! }).on('line', keep);
  const pid = await childPid(proc.pid!);
  servers.set(pid, startTime(pid) ?? '');
  const url = `http://127.0.0.1:${port}`;
  await waitReady(url, logs, exited);
  return {
    label,
    url,
    metricsUrl: `http://127.0.0.1:${metricsPort}`,
    pid,
    logs,
    exited,
    async gc() {
      // Twice: the first pass can leave objects that only die once finalizers ran.
      for (let i = 0; i < 2; i++) {
        if (startTime(pid) !== servers.get(pid)) throw new Error(`${label} (pid ${pid}) is gone`);
        process.kill(pid, 'SIGUSR2');
        await sleep(750);
      }
    },
    async stop(graceMs = 15_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      // `timeout` passes SIGTERM on to the node, which drains and exits.
      proc.kill('SIGTERM');
      const t = setTimeout(() => {
        proc.kill('SIGKILL');
        killServer(pid);
      }, graceMs);
      await exited;
      clearTimeout(t);
      servers.delete(pid);
    },
  };
}

let serverNodeArgs: string[] = [];
let serverLogFile: string | null = null;
/** Copies every output line of the servers under test to a file (diagnostics). */
export function setServerLogFile(path: string): void {
  serverLogFile = path;
}
/** Extra `node` flags for the servers under test (profiling); not allowed through NODE_OPTIONS. */
export function setServerNodeArgs(a: string[]): void {
  serverNodeArgs = a;
}

export function startSignalingNode(label: string, env: Record<string, string>, maxLifeMs: number): Promise<ServerProcess> {
  ensureServerBuilt();
  return startServer(label, [...serverNodeArgs, BLOCKRTC_BIN, 'signaling'], { LOG_LEVEL: 'warn', NODE_ID: label, ...env }, maxLifeMs, true);
}

export function startBareWs(label: string, maxLifeMs: number): Promise<ServerProcess> {
  return startServer(label, [...serverNodeArgs, RUN_TS, BARE_WS], {}, maxLifeMs, false);
}

export interface Loadgen {
  index: number;
  pid: number;
  call<C extends CommandName>(cmd: Omit<Extract<Command, { cmd: C }>, 'id'> & { cmd: C }, timeoutMs?: number): Promise<ResultMap[C]>;
  /** Latest connection progress report. */
  progress: { connected: number; failed: number };
  stop(): Promise<void>;
}

export async function startLoadgen(index: number, maxLifeMs: number): Promise<Loadgen> {
  const proc = spawn(process.execPath, [RUN_TS, LOADGEN], {
    env: { ...process.env, BENCH_MAX_LIFE_MS: String(maxLifeMs) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = track(proc, maxLifeMs + 5000);
  let seq = 0;
  const pending = new Map<number, { resolve: (r: ResultMap[CommandName]) => void; reject: (e: Error) => void }>();
  const lg: Loadgen = {
    index,
    pid: proc.pid!,
    progress: { connected: 0, failed: 0 },
    call(cmd, timeoutMs = 600_000) {
      const id = ++seq;
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`loadgen ${index}: ${cmd.cmd} timed out after ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, {
          resolve: (r) => (clearTimeout(t), resolve(r as never)),
          reject: (e) => (clearTimeout(t), reject(e)),
        });
        proc.send({ ...cmd, id });
      });
    },
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGKILL');
      await exited;
    },
  };
  let ready!: () => void;
  const readyP = new Promise<void>((r) => (ready = r));
  proc.on('message', (m: Reply) => {
    if ('progress' in m) {
      lg.progress = m.progress;
      ready();
      return;
    }
    const p = pending.get(m.re);
    if (!p) return;
    pending.delete(m.re);
    if (m.ok) p.resolve(m.result);
    else p.reject(new Error(`loadgen ${index}: ${m.error}`));
  });
  void exited.then((code) => {
    for (const p of pending.values()) p.reject(new Error(`loadgen ${index} exited with ${code}`));
    pending.clear();
  });
  await Promise.race([readyP, exited.then((c) => Promise.reject(new Error(`loadgen ${index} exited with ${c} before ready`))), sleep(30_000).then(() => Promise.reject(new Error(`loadgen ${index} not ready`)))]);
  return lg;
}

// ---- /proc ------------------------------------------------------------------------------

export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** utime + stime of a process, in ms. */
export function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start at state (field 3).
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(rest[11]) + Number(rest[12])) * 1000) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** Busy and total CPU time of the whole machine, ms. */
export function machineCpuMs(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: ((total - idle) * 1000) / CLK_TCK, total: (total * 1000) / CLK_TCK };
}

/** Pids of the database and Redis servers (part of the system under test). */
export function backendPids(): { pid: number; kind: 'postgres' | 'redis' }[] {
  const out: { pid: number; kind: 'postgres' | 'redis' }[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const comm = readFileSync(`/proc/${d}/comm`, 'utf8').trim();
      if (comm === 'postgres') out.push({ pid: Number(d), kind: 'postgres' });
      else if (comm === 'redis-server') out.push({ pid: Number(d), kind: 'redis' });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
