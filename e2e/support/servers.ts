import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../config/config.ts';
import { migrate, startNode, type NodeProcess } from '../../testkit/node.ts';
import { createTestDatabase, query } from '../../testkit/pg.ts';
import { freePort, freePortBase } from '../../testkit/ports.ts';
import { REDIS_URL, clearPrefix, testPrefix } from '../../testkit/redis.ts';
import { coturnConfig } from '../../turn/coturn.ts';

/** No process outlives a broken run by more than this. */
const MAX_LIFE_MS = 10 * 60_000;

export interface Web {
  node: NodeProcess;
  command: 'all' | 'signaling';
  /** The environment it was started with (PORT included), for a restart. */
  env: Record<string, string>;
  /** http://127.0.0.1:<port> — what the browser opens. */
  url: string;
}

/**
 * One test file's servers: a fresh PostgreSQL database, a fresh Redis key prefix, and the
 * node processes it starts. stop() kills everything and removes the data.
 */
export class Cluster {
  readonly prefix = testPrefix('e2e');
  private db: Awaited<ReturnType<typeof createTestDatabase>> | null = null;
  private readonly procs: NodeProcess[] = [];
  private readonly others: ChildProcess[] = [];
  private readonly dirs: string[] = [];
  private turn: { urls: string; secret: string } | null = null;

  get databaseUrl(): string {
    if (!this.db) throw new Error('cluster not started');
    return this.db.url;
  }

  async init(): Promise<void> {
    this.db = await createTestDatabase('e2e');
    await migrate(this.db.url);
  }

  private env(extra: Record<string, string> = {}): Record<string, string> {
    return {
      DATABASE_URL: this.databaseUrl,
      REDIS_URL,
      REDIS_KEY_PREFIX: this.prefix,
      // startNode() waits for the 'listening' line, which is logged at info.
      LOG_LEVEL: 'info',
      RATE_LIMIT_AUTH: '10000/60',
      RATE_LIMIT_CONNECT: '10000/60',
      RATE_LIMIT_MESSAGES: '10000/10',
      WS_MAX_FRAMES_PER_SECOND: '500',
      PRESENCE_HEARTBEAT_MS: '500',
      PRESENCE_STALE_MS: '2000',
      // Generous: the machine may be busy with other work; failover speed comes from PRESENCE_STALE_MS.
      SFU_COMMAND_TIMEOUT_MS: '5000',
      ...(this.turn ? { TURN_URLS: this.turn.urls, TURN_SECRET: this.turn.secret } : {}),
      ...extra,
    };
  }

  private async sfuEnv(): Promise<Record<string, string>> {
    return { SFU_WORKERS: '1', SFU_PORT_BASE: String(await freePortBase(1)) };
  }

  /** `blockrtc all`: signaling with its own SFU (joined to the fleet through Redis). */
  async all(extra: Record<string, string> = {}): Promise<Web> {
    return this.web('all', { ...(await this.sfuEnv()), ...extra });
  }

  /** `blockrtc signaling`: no media of its own. */
  async signaling(extra: Record<string, string> = {}): Promise<Web> {
    return this.web('signaling', extra);
  }

  /** `blockrtc sfu`: one media node with one worker. */
  async sfu(nodeId: string): Promise<NodeProcess> {
    const n = await startNode('sfu', this.env({ ...(await this.sfuEnv()), NODE_ID: nodeId }), MAX_LIFE_MS);
    this.procs.push(n);
    return n;
  }

  private async web(command: 'all' | 'signaling', extra: Record<string, string>): Promise<Web> {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const env = this.env({ PORT: String(port), PUBLIC_ORIGIN: url, ...extra });
    const node = await startNode(command, env, MAX_LIFE_MS);
    this.procs.push(node);
    return { node, command, env, url };
  }

  /** Starts the node of `web` again on the same port (after it was killed). */
  async restart(web: Web): Promise<Web> {
    await web.node.kill('SIGKILL');
    const node = await startNode(web.command, web.env, MAX_LIFE_MS);
    this.procs.push(node);
    return { ...web, node };
  }

  /** A real coturn from the generated (test) configuration; later nodes get TURN_URLS/TURN_SECRET. */
  async coturn(): Promise<{ port: number }> {
    const port = await freePort();
    const secret = `e2e-turn-secret-${Math.random().toString(36).slice(2)}`;
    const relayBase = 47000 + Math.floor(Math.random() * 300) * 10;
    const turn = loadConfig('turn', { TURN_SECRET: secret, TURN_LISTEN_IP: '127.0.0.1', TURN_PORT: String(port), TURN_RELAY_PORTS: `${relayBase}-${relayBase + 200}` }).turn;
    const dir = mkdtempSync(join(tmpdir(), 'brtc-e2e-turn-'));
    this.dirs.push(dir);
    const file = join(dir, 'turnserver.conf');
    writeFileSync(file, coturnConfig(turn, { test: true, extra: [`pidfile=${join(dir, 'pid')}`, 'log-file=stdout', 'simple-log'] }));
    const proc = spawn('turnserver', ['-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.others.push(proc);
    setTimeout(() => proc.kill('SIGKILL'), MAX_LIFE_MS).unref();
    const logs: string[] = [];
    proc.stdout?.on('data', (d: Buffer) => logs.push(d.toString()));
    proc.stderr?.on('data', (d: Buffer) => logs.push(d.toString()));
    // Ready once it listens on the port.
    const until = Date.now() + 10_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`turnserver exited: ${logs.join('')}`);
      if (await tcpOpen(port)) break;
      if (Date.now() > until) throw new Error(`turnserver did not start: ${logs.join('')}`);
      await new Promise((r) => setTimeout(r, 150));
    }
    this.turn = { urls: `turn:127.0.0.1:${port}`, secret };
    return { port };
  }

  /** The last lines each node logged, for a failed test's report. */
  recentLogs(lines = 80): string {
    return this.procs.map((p) => `--- ${p.nodeId} (${p.url || 'no http'})\n${p.logs.slice(-lines).join('\n')}`).join('\n');
  }

  query<T extends Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
    return query<T>(this.databaseUrl, sql, params);
  }

  async stop(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.kill('SIGKILL')));
    for (const p of this.others) p.kill('SIGKILL');
    for (const d of this.dirs) rmSync(d, { recursive: true, force: true });
    await clearPrefix(this.prefix).catch(() => undefined);
    await this.db?.drop().catch(() => undefined);
  }
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
