import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/config.ts';
import { coturnConfig, DENIED_PEER_RANGES, ownAddresses } from './coturn.ts';
import { turnCredentials } from './credentials.ts';

const SECRET = 'turn-test-secret-0123456789';

describe('coturn configuration', () => {
  it('denies private, loopback and metadata ranges in production and allows loopback only for tests', () => {
    const turn = loadConfig('turn', { TURN_SECRET: SECRET, TURN_EXTERNAL_IP: '203.0.113.10' }).turn;
    const prod = coturnConfig(turn);
    expect(prod).toContain('use-auth-secret');
    expect(prod).toContain(`static-auth-secret=${SECRET}`);
    expect(prod).toContain('denied-peer-ip=169.254.0.0-169.254.255.255');
    expect(prod).toContain('denied-peer-ip=10.0.0.0-10.255.255.255');
    expect(prod).toContain('denied-peer-ip=127.0.0.0-127.255.255.255');
    expect(prod).toContain('external-ip=203.0.113.10');
    expect(prod).not.toContain('allow-loopback-peers');
    const test = coturnConfig(turn, { test: true });
    expect(test).toContain('allow-loopback-peers');
    expect(test).not.toContain('denied-peer-ip=127.0.0.0');
  });

  it('denies the IPv6 forms that reach IPv4 or nowhere, and the TURN host\'s own addresses', () => {
    const turn = loadConfig('turn', { TURN_SECRET: SECRET, TURN_EXTERNAL_IP: '198.51.100.7/10.1.2.3', TURN_LISTEN_IP: '192.0.2.44' }).turn;
    const denied = coturnConfig(turn)
      .split('\n')
      .filter((l) => l.startsWith('denied-peer-ip='))
      .map((l) => l.slice('denied-peer-ip='.length));
    for (const r of [
      '::', // ::/128
      '::ffff:0:0-::ffff:ffff:ffff', // ::ffff:0:0/96, IPv4-mapped
      '64:ff9b:1::-64:ff9b:1:ffff:ffff:ffff:ffff:ffff', // 64:ff9b:1::/48, local NAT64
      '2002::-2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff', // 2002::/16, 6to4
      '2001::-2001:0:ffff:ffff:ffff:ffff:ffff:ffff', // 2001::/32, Teredo
    ]) {
      expect(denied).toContain(r);
    }
    // Both halves of external-ip=public/private and a specific listen address.
    expect(denied).toEqual(expect.arrayContaining(['198.51.100.7', '10.1.2.3', '192.0.2.44']));
    expect(ownAddresses(turn)).toEqual(['198.51.100.7', '10.1.2.3', '192.0.2.44']);
    // The wildcard listen address is not an address of the host to deny.
    expect(ownAddresses(loadConfig('turn', { TURN_SECRET: SECRET }).turn)).toEqual([]);
    // Opt-out, and test mode, leave them out.
    const optOut = loadConfig('turn', { TURN_SECRET: SECRET, TURN_EXTERNAL_IP: '198.51.100.7', TURN_DENY_OWN_ADDRESSES: 'false' }).turn;
    expect(coturnConfig(optOut)).not.toContain('denied-peer-ip=198.51.100.7\n');
    expect(coturnConfig(optOut)).toContain('denied-peer-ip=::ffff:0:0-::ffff:ffff:ffff');
    expect(coturnConfig(turn, { test: true })).not.toContain('denied-peer-ip=');
  });

  it('mints REST credentials as <expiry>:<address> with an HMAC-SHA1 password', () => {
    const c = turnCredentials(SECRET, '0xAbC', 600, ['turn:127.0.0.1:3478'], 1_000_000_000_000);
    expect(c.username).toBe('1000000600:0xAbC');
    expect(c.credential).toMatch(/^[A-Za-z0-9+/]+=*$/);
  });
});

/** A real coturn started from the generated configuration. */
describe('credentials against a real coturn', () => {
  const dir = mkdtempSync(join(tmpdir(), 'brtc-turn-'));
  const port = 35000 + Math.floor(Math.random() * 2000);
  let proc: ReturnType<typeof spawn>;

  beforeAll(async () => {
    const turn = loadConfig('turn', {
      TURN_SECRET: SECRET,
      TURN_LISTEN_IP: '127.0.0.1',
      TURN_PORT: String(port),
      TURN_RELAY_PORTS: `${port + 100}-${port + 200}`,
    }).turn;
    const file = join(dir, 'turnserver.conf');
    writeFileSync(file, coturnConfig(turn, { test: true, extra: [`pidfile=${join(dir, 'pid')}`, 'log-file=stdout'] }));
    proc = spawn('turnserver', ['-c', file], { stdio: 'ignore' });
    setTimeout(() => proc.kill('SIGKILL'), 120_000).unref();
    await new Promise((r) => setTimeout(r, 1500));
  });
  afterAll(() => {
    proc?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  const allocate = (username: string, password: string) =>
    spawnSync('turnutils_uclient', ['-y', '-n', '2', '-m', '1', '-l', '100', '-u', username, '-w', password, '-p', String(port), '127.0.0.1'], { encoding: 'utf8', timeout: 15_000 });

  it('accepts minted credentials: allocations succeed and data is relayed', () => {
    const c = turnCredentials(SECRET, '0x1111111111111111111111111111111111111111', 600, []);
    const r = allocate(c.username, c.credential);
    expect(r.status).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/tot_recv_bytes ~ [1-9]/);
  });

  it('takes every denied range of the production configuration (coturn lists each one it parsed)', () => {
    const p = 36000 + Math.floor(Math.random() * 2000);
    const turn = loadConfig('turn', { TURN_SECRET: SECRET, TURN_LISTEN_IP: '127.0.0.1', TURN_PORT: String(p), TURN_RELAY_PORTS: `${p + 100}-${p + 200}`, TURN_EXTERNAL_IP: '198.51.100.7' }).turn;
    const file = join(dir, 'prod.conf');
    writeFileSync(file, coturnConfig(turn, { extra: [`pidfile=${join(dir, 'prod.pid')}`, 'log-file=stdout', 'no-tls', 'no-dtls'] }));
    const r = spawnSync('turnserver', ['-c', file], { encoding: 'utf8', timeout: 2500, killSignal: 'SIGKILL' });
    const log = `${r.stdout}${r.stderr}`;
    for (const range of [...DENIED_PEER_RANGES, '198.51.100.7', '127.0.0.1']) expect(log).toContain(`Black listing: ${range}\n`);
    expect(log).not.toMatch(/wrong|cannot parse|bad format/i);
  });

  it('refuses a wrong password and an expired username', () => {
    const c = turnCredentials(SECRET, '0x1111111111111111111111111111111111111111', 600, []);
    const bad = allocate(c.username, 'not-the-password');
    expect(bad.status).not.toBe(0);
    expect(bad.stdout + bad.stderr).toContain('Cannot complete Allocation');
    const expired = turnCredentials(SECRET, '0x1111111111111111111111111111111111111111', 60, [], Date.now() - 3_600_000);
    expect(allocate(expired.username, expired.credential).status).not.toBe(0);
  });
});
