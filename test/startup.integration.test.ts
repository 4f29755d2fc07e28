import { spawn } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, startNode, TEST_JWT_SECRET, type NodeProcess } from '../testkit/node.ts';
import { createTestDatabase } from '../testkit/pg.ts';
import { freePort, freePortBase } from '../testkit/ports.ts';
import { REDIS_URL, clearPrefix, testPrefix } from '../testkit/redis.ts';

const BIN = fileURLToPath(new URL('../bin/blockrtc.mjs', import.meta.url));

/** Runs `blockrtc <command>` expecting it to stop by itself; its exit code and output. */
function runToExit(command: string, env: Record<string, string>, timeoutMs = 60_000): Promise<{ code: number | null; stdout: string[]; stderr: string[] }> {
  const proc = spawn(process.execPath, [BIN, command], {
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', METRICS_PORT: '0', LOG_LEVEL: 'info', JWT_SECRET: TEST_JWT_SECRET, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const killer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) =>
    proc.once('close', (code) => {
      clearTimeout(killer);
      const lines = (s: string) => s.split('\n').filter((l) => l.trim() !== '');
      resolve({ code, stdout: lines(out), stderr: lines(err) });
    }),
  );
}

function holdTcp(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
}
function holdUdp(port: number): Promise<UdpSocket> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(port, '127.0.0.1', () => resolve(s));
  });
}

/** Start-up on one machine: taken ports, the printed address, where /metrics lives. */
describe('start-up', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  const prefix = testPrefix('startup');
  const held: { close(): void }[] = [];
  const nodes: NodeProcess[] = [];
  const signalingEnv = () => ({ DATABASE_URL: db.url, REDIS_URL, REDIS_KEY_PREFIX: prefix });

  beforeAll(async () => {
    db = await createTestDatabase('startup');
    await migrate(db.url);
  });
  afterAll(async () => {
    for (const h of held) h.close();
    await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    await clearPrefix(prefix);
    await db.drop();
  });

  it('a taken PORT stops a signaling node with one line naming PORT, no stack trace', async () => {
    const port = await freePort();
    held.push(await holdTcp(port));
    const r = await runToExit('signaling', { ...signalingEnv(), PORT: String(port) });
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBeNull();
    expect(r.stderr, r.stderr.join('\n')).toHaveLength(1);
    expect(r.stderr[0]).toContain(String(port));
    expect(r.stderr[0]).toMatch(/\bPORT\b/);
    expect(r.stderr[0]).not.toContain('METRICS_PORT');
    expect([...r.stdout, ...r.stderr].join('\n')).not.toMatch(/\n\s+at /);
  });

  it('a taken METRICS_PORT names METRICS_PORT', async () => {
    const port = await freePort();
    held.push(await holdTcp(port));
    const r = await runToExit('signaling', { ...signalingEnv(), METRICS_PORT: String(port) });
    expect(r.code).not.toBe(0);
    expect(r.stderr, r.stderr.join('\n')).toHaveLength(1);
    expect(r.stderr[0]).toContain(String(port));
    expect(r.stderr[0]).toContain('METRICS_PORT');
  });

  it('a taken SFU worker port stops `blockrtc all` with one line naming SFU_PORT_BASE', async () => {
    const base = await freePortBase(1);
    held.push(await holdUdp(base));
    // A second instance on the same machine: the same worker port, its own HTTP port.
    const r = await runToExit('all', { DATABASE_URL: db.url, REDIS_URL: '', JWT_SECRET: '', SFU_WORKERS: '1', SFU_PORT_BASE: String(base) }, 90_000);
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBeNull();
    expect(r.stderr, r.stderr.join('\n')).toHaveLength(1);
    expect(r.stderr[0]).toContain(String(base));
    expect(r.stderr[0]).toContain('SFU_PORT_BASE');
    expect([...r.stdout, ...r.stderr].join('\n')).not.toMatch(/\n\s+at /);
  });

  it('`blockrtc all` prints the public origin the sign-in messages are bound to; a second one names every port to change', async () => {
    const env = {
      DATABASE_URL: db.url,
      REDIS_URL: '',
      JWT_SECRET: '',
      SFU_WORKERS: '1',
      SFU_PORT_BASE: String(await freePortBase(1)),
      PORT: String(await freePort()),
      METRICS_PORT: String(await freePort()),
      PUBLIC_ORIGIN: 'http://chat.example.test:8080',
    };
    const node = await startNode('all', env);
    nodes.push(node);
    const until = Date.now() + 10_000;
    let line: string | undefined;
    while (!(line = node.logs.find((l) => l.includes('BlockRTC is running at'))) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(line, node.logs.join('\n')).toBeDefined();
    const entry = JSON.parse(line!) as { msg: string; url: string; listening: string };
    expect(entry.msg).toBe('BlockRTC is running at http://chat.example.test:8080');
    expect(entry.url).toBe('http://chat.example.test:8080');
    expect(entry.listening).toBe(node.url);
    const nonce = (await (await fetch(`${node.url}/auth/nonce`, { method: 'POST' })).json()) as { domain: string; uri: string };
    expect(nonce).toMatchObject({ domain: 'chat.example.test:8080', uri: 'http://chat.example.test:8080' });

    // /metrics: on METRICS_PORT only.
    expect((await fetch(`${node.url}/metrics`)).status).toBe(404);
    const metrics = await fetch(`${node.metricsUrl}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('blockrtc_ws_connections');
    expect((await fetch(`${node.metricsUrl}/healthz`)).status).toBe(404);

    // The same command again on this machine: one line with every port and its variable.
    const again = await runToExit('all', env, 90_000);
    expect(again.code).toBe(1);
    expect(again.stderr, again.stderr.join('\n')).toHaveLength(1);
    for (const part of [`${env.PORT} (set PORT)`, `${env.METRICS_PORT} (set METRICS_PORT)`, `${env.SFU_PORT_BASE}/udp (set SFU_PORT_BASE)`, `${env.SFU_PORT_BASE} (set SFU_PORT_BASE)`]) {
      expect(again.stderr[0]).toContain(part);
    }
    // The running instance is untouched.
    expect((await fetch(`${node.url}/readyz`)).status).toBe(200);
  });

  it('refuses METRICS_PORT equal to PORT at start-up', async () => {
    const r = await runToExit('signaling', { ...signalingEnv(), PORT: '8123', METRICS_PORT: '8123' });
    expect(r.code).toBe(2);
    expect(r.stderr.join('\n')).toContain('METRICS_PORT');
  });
});
