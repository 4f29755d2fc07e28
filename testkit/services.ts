import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { chmodSync, chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Private PostgreSQL and Redis servers for tests that kill and restart them (never the
 * shared ones). Both listen on 127.0.0.1 on the given port and keep it across restarts.
 */

const PG_BIN = process.env.TEST_PG_BIN ?? '/usr/lib/postgresql/15/bin';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface PrivatePostgres {
  url: string;
  port: number;
  /** `pg_ctl stop -m immediate`: the postmaster and its backends die as in a crash. */
  crash(): Promise<void>;
  /** Starts it again (crash recovery included) and waits until it accepts connections. */
  start(): Promise<void>;
  stop(): void;
}

/** initdb needs a non-root user: as root, the server runs as `postgres`. */
function asPgUser(args: string[]): string[] {
  return process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--', ...args] : args;
}

/** Asynchronous, so the clients of a test keep running while the server stops or starts. */
async function run(args: string[]): Promise<void> {
  const [cmd, ...rest] = asPgUser(args) as [string, ...string[]];
  try {
    await promisify(execFile)(cmd, rest, { encoding: 'utf8' });
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    throw new Error(`${args.join(' ')} failed (${e.code}): ${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

export async function startPrivatePostgres(port: number): Promise<PrivatePostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'brtc-pg-'));
  const data = join(dir, 'data');
  if (process.getuid?.() === 0) {
    const pgUser = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const pgGroup = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    chownSync(dir, Number(pgUser.stdout.trim()), Number(pgGroup.stdout.trim()));
  }
  chmodSync(dir, 0o700);
  await run([join(PG_BIN, 'initdb'), '-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale', 'C']);
  // fsync off: a process crash keeps what the kernel has; the machine does not crash in a test.
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=100`;
  const pg: PrivatePostgres = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    crash: () => run([join(PG_BIN, 'pg_ctl'), '-D', data, '-m', 'immediate', '-w', 'stop']),
    start: () => run([join(PG_BIN, 'pg_ctl'), '-D', data, '-o', opts, '-l', join(dir, 'log'), '-w', '-t', '30', 'start']),
    stop: () => {
      const [cmd, ...args] = asPgUser([join(PG_BIN, 'pg_ctl'), '-D', data, '-m', 'immediate', 'stop']) as [string, ...string[]];
      spawnSync(cmd, args);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await pg.start();
  return pg;
}

export interface PrivateRedis {
  url: string;
  port: number;
  /** SIGKILL: connections drop at once, nothing is saved. */
  kill(): Promise<void>;
  start(): Promise<void>;
}

export async function startPrivateRedis(port: number): Promise<PrivateRedis> {
  let proc: ChildProcess | null = null;
  const r: PrivateRedis = {
    url: `redis://127.0.0.1:${port}`,
    port,
    async start() {
      proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
      const until = Date.now() + 10_000;
      while (Date.now() < until) {
        const pong = await promisify(execFile)('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).then((r) => r.stdout.trim(), () => '');
        if (pong === 'PONG') return;
        await sleep(50);
      }
      throw new Error(`redis on ${port} did not start`);
    },
    async kill() {
      const p = proc;
      proc = null;
      if (!p || p.exitCode !== null) return;
      const exited = new Promise((res) => p.once('exit', res));
      p.kill('SIGKILL');
      await exited;
    },
  };
  await r.start();
  return r;
}
