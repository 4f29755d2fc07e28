import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
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

/** A STUN binding request over UDP; resolves true if the server answers with a binding success. */
function stunAnswers(port: number, timeoutMs = 300): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createSocket('udp4');
    const txId = randomBytes(12);
    const req = Buffer.concat([Buffer.from([0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42]), txId]);
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.close();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.on('error', () => done(false));
    sock.on('message', (m) => done(m.readUInt16BE(0) === 0x0101 && m.subarray(8, 20).equals(txId)));
    sock.send(req, port, '127.0.0.1');
  });
}

/** A real coturn started from the generated configuration. */
describe('credentials against a real coturn', () => {
  const dir = mkdtempSync(join(tmpdir(), 'brtc-turn-'));
  const port = 35000 + Math.floor(Math.random() * 2000);
  let proc: ReturnType<typeof spawn>;
  /** coturn's own log (verbose: one line per refused request, with the user and the error). */
  let log = '';

  beforeAll(async () => {
    const turn = loadConfig('turn', {
      TURN_SECRET: SECRET,
      TURN_LISTEN_IP: '127.0.0.1',
      TURN_PORT: String(port),
      TURN_RELAY_PORTS: `${port + 100}-${port + 200}`,
    }).turn;
    const file = join(dir, 'turnserver.conf');
    writeFileSync(file, coturnConfig(turn, { test: true, extra: [`pidfile=${join(dir, 'pid')}`, 'log-file=stdout', 'verbose'] }));
    proc = spawn('turnserver', ['-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    setTimeout(() => proc.kill('SIGKILL'), 120_000).unref();
    const t0 = Date.now();
    while (!(await stunAnswers(port))) {
      if (proc.exitCode !== null || Date.now() - t0 > 15_000) throw new Error(`coturn did not answer STUN on ${port}:\n${log}`);
    }
  });
  afterAll(() => {
    proc?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  const allocate = (username: string, password: string) =>
    spawnSync('turnutils_uclient', ['-y', '-n', '2', '-m', '1', '-l', '100', '-u', username, '-w', password, '-p', String(port), '127.0.0.1'], { encoding: 'utf8', timeout: 15_000 });
  const address = '0x1111111111111111111111111111111111111111';
  /** The server logged a 401 for this user (it was reached, and refused the credential). */
  const refused401 = (username: string) =>
    expect.poll(() => log.includes(`user <${username}>: incoming packet message processed, error 401`), { timeout: 5_000, interval: 50 }).toBe(true);

  it('accepts minted credentials: allocations succeed and data is relayed', () => {
    const c = turnCredentials(SECRET, address, 600, []);
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

  it('refuses a wrong password and an expired username with 401, while a fresh credential works', async () => {
    const c = turnCredentials(SECRET, '0x2222222222222222222222222222222222222222', 600, []);
    const bad = allocate(c.username, 'not-the-password');
    expect(bad.status).not.toBe(0);
    expect(bad.stdout + bad.stderr).toContain('Cannot complete Allocation');
    await refused401(c.username);
    // Correctly signed, one hour old: only its expiry can make it fail.
    const expired = turnCredentials(SECRET, address, 60, [], Date.now() - 3_600_000);
    const old = allocate(expired.username, expired.credential);
    expect(old.status).not.toBe(0);
    expect(old.stdout + old.stderr).toContain('Cannot complete Allocation');
    await refused401(expired.username);
    // The same server, the same run: a fresh credential still allocates and relays.
    const fresh = turnCredentials(SECRET, address, 600, []);
    const ok = allocate(fresh.username, fresh.credential);
    expect(ok.status).toBe(0);
    expect(ok.stdout + ok.stderr).toMatch(/tot_recv_bytes ~ [1-9]/);
    expect(log).not.toContain(`user <${fresh.username}>: incoming packet message processed, error 401`);
  });
});
