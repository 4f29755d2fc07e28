import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { Report } from '../loadtest/report.ts';
import { migrate, startNode, type NodeProcess } from '../testkit/node.ts';
import { freePortBase } from '../testkit/ports.ts';
import { createTestDatabase } from '../testkit/pg.ts';
import { REDIS_URL, clearPrefix, testPrefix } from '../testkit/redis.ts';

const BIN = fileURLToPath(new URL('../bin/blockrtc.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'brtc-loadtest-'));
const GENEROUS = { RATE_LIMIT_AUTH: '10000/60', RATE_LIMIT_CONNECT: '10000/60' };

/** Runs `blockrtc loadtest` as an operator would and returns its exit code, output and JSON report. */
async function loadtest(name: string, args: string[]): Promise<{ code: number | null; out: string; report: Report }> {
  const report = join(dir, `${name}.json`);
  const proc = spawn(process.execPath, [BIN, 'loadtest', ...args, '--report', report, '--token-cache', join(dir, 'tokens.json')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((r) => proc.once('exit', r));
  clearTimeout(timer);
  return { code, out, report: JSON.parse(readFileSync(report, 'utf8')) as Report };
}

/** What every complete run must show: the counts add up and nothing failed. */
function expectConsistent(r: Report, users: number, calls: number, churn = false): void {
  expect(r.errors).toEqual({ total: 0, byCode: {}, byOperation: {} });
  expect(r.signIn.fresh + r.signIn.cached).toBe(users);
  expect(r.connect).toMatchObject({ attempted: users, connected: users, failed: 0 });
  expect(r.chat.sent).toBeGreaterThan(0);
  expect(r.chat).toMatchObject({ acked: r.chat.sent, delivered: r.chat.sent, failed: 0, unanswered: 0, duplicates: 0 });
  expect(r.chat.deliveredLive + r.chat.deliveredBySync).toBe(r.chat.delivered);
  expect(r.chat.deliveryMs.count).toBe(r.chat.deliveredLive);
  expect(r.chat.deliveryMs.p99).toBeGreaterThan(0);
  expect(r.chat.deliveryMs.p99).toBeGreaterThanOrEqual(r.chat.deliveryMs.p50!);
  expect(r.chat.deliveryMs.max).toBeGreaterThanOrEqual(r.chat.deliveryMs.p99!);
  // Every delivered message got a delivered receipt, and its sender heard of it (unless the
  // sender was away just then: churn).
  expect(r.receipts.failed).toBe(0);
  expect(r.receipts.acked + r.receipts.interruptedByChurn).toBe(r.receipts.deliveredSent + r.receipts.readSent);
  if (!churn) expect(r.receipts.interruptedByChurn).toBe(0);
  if (churn) expect(r.receipts.deliveredIdsReported).toBeLessThanOrEqual(r.chat.delivered);
  else expect(r.receipts.deliveredIdsReported).toBe(r.chat.delivered);
  expect(r.calls).toMatchObject({ planned: calls, up: calls, failed: 0, participantsLeft: calls * r.parameters.participants });
  if (calls > 0) {
    expect(r.calls.setupMs.count).toBe(calls);
    expect(r.calls.setupMs.p99).toBeGreaterThan(0);
    // Each participant receives every other one's audio.
    expect(r.calls.subscribers).toHaveLength(calls * r.parameters.participants * (r.parameters.participants - 1));
    for (const s of r.calls.subscribers) {
      expect(s.packets).toBeGreaterThan(50);
      expect(s.lossPct).toBeLessThan(5);
      expect(s.kbps).toBeGreaterThan(r.parameters.audioKbps * 0.7);
    }
  }
}

describe('blockrtc loadtest', () => {
  const procs: NodeProcess[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.kill('SIGKILL')));
    for (const c of cleanups) await c().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('drives an embedded node: chat, receipts, typing and two audio calls, with a consistent report; a second run reuses the cached tokens', async () => {
    const data = mkdtempSync(join(tmpdir(), 'brtc-lt-embedded-'));
    cleanups.push(async () => rmSync(data, { recursive: true, force: true }));
    const node = await startNode('all', { ...GENEROUS, DATA_DIR: data, JWT_SECRET: '', REDIS_URL: '', DATABASE_URL: '', SFU_WORKERS: '1', SFU_PORT_BASE: String(await freePortBase(1)) });
    procs.push(node);
    const common = ['--url', node.url, '--users', '50', '--workers', '2', '--connect-rate', '100', '--source-addresses', '127.0.0.1-127.0.0.4', '--msgs-per-min', '30', '--typing-per-min', '6', '--reads-per-min', '6', '--quiet'];
    const first = await loadtest('embedded', [...common, '--duration', '6', '--calls', '2', '--participants', '2']);
    expect(first.code, first.out).toBe(0);
    expectConsistent(first.report, 50, 2);
    expect(first.report.signIn).toMatchObject({ fresh: 50, cached: 0 });
    expect(first.report.typing.sent).toBeGreaterThan(0);
    expect(first.out).toContain('blockrtc loadtest: 50 users over 2 worker(s)');

    const again = await loadtest('embedded-again', [...common, '--duration', '2']);
    expect(again.code, again.out).toBe(0);
    expectConsistent(again.report, 50, 0);
    expect(again.report.signIn).toMatchObject({ fresh: 0, cached: 50 });
  });

  it('drives two signaling nodes and an SFU node over PostgreSQL and Redis, with presence churn', async () => {
    const db = await createTestDatabase('loadtest');
    const prefix = testPrefix('loadtest');
    cleanups.push(() => db.drop(), () => clearPrefix(prefix));
    await migrate(db.url);
    const env = { ...GENEROUS, DATABASE_URL: db.url, REDIS_URL, REDIS_KEY_PREFIX: prefix, WS_MAX_FRAMES_PER_SECOND: '500' };
    const [a, b, sfu] = await Promise.all([startNode('signaling', env), startNode('signaling', env), startNode('sfu', { ...env, SFU_WORKERS: '1', SFU_PORT_BASE: String(await freePortBase(1)) })]);
    procs.push(a!, b!, sfu!);
    // Two URLs: each chat pair spans both nodes, so every message crosses Redis.
    const r = await loadtest('two-nodes', ['--url', `${a!.url},${b!.url}`, '--users', '50', '--workers', '2', '--connect-rate', '100', '--duration', '6', '--msgs-per-min', '30', '--churn-per-min', '4', '--calls', '1', '--participants', '2', '--quiet']);
    expect(r.code, r.out).toBe(0);
    expectConsistent(r.report, 50, 1, true);
    expect(r.report.presence.disconnects).toBeGreaterThan(0);
    expect(r.report.presence.reconnects).toBe(r.report.presence.disconnects);
  });

  it('refuses a value above a flag\'s maximum', async () => {
    const proc = spawn(process.execPath, [BIN, 'loadtest', '--users', '2000000'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    proc.stderr.on('data', (c: Buffer) => (err += c.toString()));
    expect(await new Promise((r) => proc.once('exit', r))).toBe(2);
    expect(err).toContain('--users 2000000 is above the maximum of 1000000');
  });
});
