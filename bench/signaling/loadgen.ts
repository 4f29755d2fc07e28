/**
 * A load generator process: holds WebSocket clients and runs the orchestrator's commands
 * (IPC). Kept lean per socket so that one process can hold 15,000 connections and still
 * leave the CPU to the server under test.
 */
import { randomBytes } from 'node:crypto';
import { getAddress } from 'ethers';
import WebSocket from 'ws';
import { BEARER_PROTOCOL_PREFIX, SUBPROTOCOL } from '../../protocol/common.ts';
import { TokenService } from '../../signaling/auth/tokens.ts';
import type { ChatCollectResult, ChatPair, ChatSendResult, Command, CommandName, ConnectResult, CpuUsage, Reply, ResultMap, Target } from './ipc.ts';
import { rawClose, rawConnect, type RawClient } from './rawclient.ts';
import { nowMs } from './stats.ts';

if (!process.send) {
  console.error('loadgen.ts runs as a child of bench/signaling/run.ts (needs an IPC channel)');
  process.exit(2);
}
const send = (r: Reply) => process.send!(r);

// Bounded life whatever happens to the orchestrator: a watchdog, and leaving with it.
const maxLifeMs = Number(process.env.BENCH_MAX_LIFE_MS ?? 900_000);
setTimeout(() => {
  console.error(`loadgen ${process.pid}: watchdog (${maxLifeMs} ms) expired`);
  process.exit(3);
}, maxLifeMs).unref();
process.on('disconnect', () => process.exit(0));

interface User {
  address: string;
  token: string;
}

/** Per-run receiving figures. */
interface RunRx {
  received: number;
  receivedAfterWarmup: number;
  receivedInWindow: number;
  /** The run's measured window (epoch ms), known once the chat command arrived. */
  windowStart: number;
  windowEnd: number;
  latencies: number[];
  firstAt: number;
  lastAt: number;
}

/** State of one client socket; the shared listeners reach it through the socket. */
interface Client {
  address: string;
  ws: WebSocket;
  /** Send times of this client's unanswered requests, by request id. */
  inflight: Map<string, number> | null;
  /** Closed-loop refill for this sender, installed by a closed-loop run. */
  onAck: ((c: Client) => void) | null;
}

const CLIENT = Symbol('client');
type Tagged = WebSocket & { [CLIENT]?: Client };

let users: User[] = [];
/** Users connected so far (both kinds); the next connect command continues from here. */
let usedUsers = 0;
const clients: Client[] = [];
const rawClients: RawClient[] = [];
const byAddress = new Map<string, Client>();
const rx = new Map<string, RunRx>();
/** The sender-side tallies of the run in progress (one run at a time per process). */
let tx: {
  run: string;
  acked: number;
  ackedInWindow: number;
  failed: number;
  errors: Record<string, number>;
  ackLatencies: number[];
  warmupEndsAt: number;
  endsAt: number;
} | null = null;
let rxCpuMark: NodeJS.CpuUsage = process.cpuUsage();

function cpuSince(mark: NodeJS.CpuUsage): CpuUsage {
  const d = process.cpuUsage(mark);
  return { userMs: Math.round(d.user / 1000), systemMs: Math.round(d.system / 1000) };
}

function bump(errors: Record<string, number>, code: string): void {
  errors[code] = (errors[code] ?? 0) + 1;
}

// ---- frames from the server -------------------------------------------------------------

interface Frame {
  ev?: string;
  re?: string | null;
  ok?: boolean;
  data?: { text?: string | null };
  error?: { code?: string };
}

function onFrame(this: WebSocket, raw: WebSocket.RawData): void {
  const client = (this as Tagged)[CLIENT];
  if (!client) return;
  const at = nowMs();
  const text = raw.toString();
  let f: Frame;
  try {
    f = JSON.parse(text) as Frame;
  } catch {
    return;
  }
  if (f.ev === 'chat.message') return received(f.data?.text ?? '', at);
  if (typeof f.re === 'string' && client.inflight) {
    const sentAt = client.inflight.get(f.re);
    if (sentAt === undefined) return;
    client.inflight.delete(f.re);
    if (tx) {
      if (f.ok) {
        tx.acked++;
        if (at >= tx.warmupEndsAt && at <= tx.endsAt) tx.ackedInWindow++;
        if (sentAt >= tx.warmupEndsAt) tx.ackLatencies.push(Math.round((at - sentAt) * 1000) / 1000);
      } else {
        tx.failed++;
        bump(tx.errors, f.error?.code ?? 'unknown');
      }
    }
    client.onAck?.(client);
  }
}

/** Text layout: `<run>|<sent epoch ms>|<1 if sent during warm-up>|<padding>`. */
function received(text: string, at: number): void {
  const a = text.indexOf('|');
  const b = text.indexOf('|', a + 1);
  if (a < 0 || b < 0) return;
  const r = rxFor(text.slice(0, a));
  if (r.received === 0) r.firstAt = at;
  r.received++;
  r.lastAt = at;
  if (at >= r.windowStart && at <= r.windowEnd) r.receivedInWindow++;
  if (text.charCodeAt(b + 1) === 48 /* '0' */) {
    r.receivedAfterWarmup++;
    r.latencies.push(Math.round((at - Number(text.slice(a + 1, b))) * 1000) / 1000);
  }
}

function rxFor(run: string): RunRx {
  let r = rx.get(run);
  if (!r) rx.set(run, (r = { received: 0, receivedAfterWarmup: 0, receivedInWindow: 0, windowStart: Infinity, windowEnd: -Infinity, latencies: [], firstAt: 0, lastAt: 0 }));
  return r;
}

function onError(this: WebSocket): void {
  // 'close' follows; failures are counted where they matter.
}

// ---- commands ---------------------------------------------------------------------------

function prepare(c: Extract<Command, { cmd: 'prepare' }>): ResultMap['prepare'] {
  const t0 = nowMs();
  const addresses = c.addresses ?? Array.from({ length: c.count }, () => getAddress(`0x${randomBytes(20).toString('hex')}`));
  // Tokens are minted here, off the clock, by the server's own token service with the
  // secret the nodes under test were given: the connect run measures the server's JWT
  // check, not this process's signing.
  const tokens = new TokenService(c.jwtSecret, c.ttlSec);
  users = addresses.map((address) => ({ address, token: tokens.issue(address).token }));
  return { addresses, ms: Math.round(nowMs() - t0) };
}

function openOne(url: string, user: User, localAddress: string, timeoutMs: number): Promise<{ ws: WebSocket }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, [SUBPROTOCOL, `${BEARER_PROTOCOL_PREFIX}${user.token}`], { perMessageDeflate: false, localAddress, handshakeTimeout: timeoutMs });
    let settled = false;
    const finish = (err: string | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.removeAllListeners();
      ws.on('error', onError);
      if (err === null) return resolve({ ws });
      ws.terminate();
      reject(new Error(err));
    };
    const timer = setTimeout(() => finish('hello-timeout'), timeoutMs);
    ws.on('message', (data) => {
      const text = data.toString();
      if (text.startsWith('{"ev":"session.hello"')) finish(null);
    });
    ws.on('unexpected-response', (req, res) => {
      const code = res.headers['x-blockrtc-error'];
      res.resume();
      req.destroy();
      finish(typeof code === 'string' ? code : `HTTP ${res.statusCode}`);
    });
    ws.on('error', (err: NodeJS.ErrnoException) => finish(err.code ?? err.message.slice(0, 60)));
    ws.on('close', (code) => finish(`closed ${code}`));
  });
}

async function connect(c: Extract<Command, { cmd: 'connect' }>): Promise<ConnectResult> {
  const plan: { url: string; user: User }[] = [];
  for (const t of c.targets as Target[]) {
    for (let i = 0; i < t.count; i++) {
      const user = users[usedUsers++];
      if (!user) throw new Error(`only ${users.length} users prepared`);
      plan.push({ url: t.url, user });
    }
  }
  const cpuMark = process.cpuUsage();
  const latencies: number[] = [];
  const errors: Record<string, number> = {};
  let failed = 0;
  let next = 0;
  const startedAt = nowMs();
  let finishedAt = startedAt;
  const progress = setInterval(() => send({ progress: { connected: latencies.length, failed } }), 1000);
  const worker = async () => {
    while (next < plan.length) {
      const p = plan[next++]!;
      try {
        const t0 = nowMs();
        if (c.client === 'raw') {
          const u = new URL(p.url);
          rawClients.push(await rawConnect({ host: u.hostname, port: Number(u.port), path: u.pathname, localAddress: c.localAddress, token: p.user.token, timeoutMs: c.timeoutMs }));
        } else {
          const { ws } = await openOne(p.url, p.user, c.localAddress, c.timeoutMs);
          const client: Client = { address: p.user.address, ws, inflight: null, onAck: null };
          (ws as Tagged)[CLIENT] = client;
          ws.on('message', onFrame);
          clients.push(client);
          byAddress.set(client.address, client);
        }
        finishedAt = nowMs();
        latencies.push(Math.round((finishedAt - t0) * 1000) / 1000);
      } catch (err) {
        failed++;
        bump(errors, err instanceof Error ? err.message : String(err));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, c.concurrency) }, worker));
  clearInterval(progress);
  return {
    requested: plan.length,
    connected: latencies.length,
    failed,
    errors,
    startedAt,
    finishedAt,
    latencies,
    cpu: cpuSince(cpuMark),
    rssBytes: process.memoryUsage.rss(),
  };
}

function chatFrame(id: string, to: string, clientId: string, text: string): string {
  return `{"id":"${id}","type":"chat.send","to":"${to}","clientId":"${clientId}","kind":"text","text":"${text}"}`;
}

async function chat(c: Extract<Command, { cmd: 'chat' }>): Promise<ChatSendResult> {
  const senders: { client: Client; to: string }[] = (c.pairs as ChatPair[]).map((p) => {
    const client = byAddress.get(p.from);
    if (!client) throw new Error(`sender ${p.from} is not connected here`);
    client.inflight = new Map();
    return { client, to: p.to };
  });
  if (senders.length === 0) throw new Error('no senders');
  const run = c.run;
  const pad = 'x'.repeat(Math.max(0, c.textBytes - 40));
  const warmupEndsAt = c.startAt + c.warmupMs;
  const endAt = c.startAt + c.durationMs;
  // This process receives for the run too (partners of the other process's senders).
  const r = rxFor(run);
  r.windowStart = warmupEndsAt;
  r.windowEnd = endAt;
  tx = { run, acked: 0, ackedInWindow: 0, failed: 0, errors: {}, ackLatencies: [], warmupEndsAt, endsAt: endAt };
  const state = tx;
  const pacerLag: number[] = [];
  let seq = 0;
  const tag = `${run}-${process.pid}`;
  const sendOne = (s: { client: Client; to: string }) => {
    const id = String(++seq);
    const at = nowMs();
    const text = `${run}|${at.toFixed(3)}|${at < warmupEndsAt ? 1 : 0}|${pad}`;
    s.client.inflight!.set(id, at);
    s.client.ws.send(chatFrame(id, s.to, `${tag}-${id}`, text));
  };

  const waitUntil = (t: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, t - nowMs())));
  await waitUntil(c.startAt);
  rxCpuMark = process.cpuUsage();
  const cpuMark = process.cpuUsage();
  const startedAt = nowMs();

  if (c.mode === 'open') {
    // Open loop: the schedule decides when to send, never the server's answers, so a
    // slow server shows up as latency instead of as a lower offered load.
    const intervalMs = 1000 / c.rate;
    let k = 0;
    await new Promise<void>((resolve) => {
      const tick = () => {
        const now = nowMs();
        const due = Math.min(Math.floor((Math.min(now, endAt) - c.startAt) / intervalMs), Math.floor(c.durationMs / intervalMs));
        while (k < due) {
          const scheduled = c.startAt + k * intervalMs;
          sendOne(senders[k % senders.length]!);
          if (scheduled >= warmupEndsAt) pacerLag.push(Math.round((nowMs() - scheduled) * 1000) / 1000);
          k++;
        }
        if (now >= endAt) resolve();
        else setTimeout(tick, 1);
      };
      tick();
    });
  } else {
    // Closed loop: each sender keeps `window` sends unanswered; an answer releases the next.
    let running = true;
    const bySender = new Map<Client, { client: Client; to: string }>(senders.map((s) => [s.client, s]));
    for (const s of senders) {
      s.client.onAck = (cl) => {
        if (running && nowMs() < endAt) sendOne(bySender.get(cl)!);
      };
    }
    for (const s of senders) for (let i = 0; i < c.window; i++) sendOne(s);
    await waitUntil(endAt);
    running = false;
  }
  const endedAt = nowMs();
  // An overloaded server still works through its backlog: wait for answers while they keep
  // coming, but not forever.
  const outstanding = () => senders.reduce((n, s) => n + s.client.inflight!.size, 0);
  const hardUntil = nowMs() + 120_000;
  let last = outstanding();
  let lastProgressAt = nowMs();
  while (last > 0 && nowMs() < hardUntil && nowMs() - lastProgressAt < 10_000) {
    await new Promise((r) => setTimeout(r, 50));
    const o = outstanding();
    if (o < last) lastProgressAt = nowMs();
    last = o;
  }
  for (const s of senders) s.client.onAck = null;
  const unanswered = outstanding();
  tx = null;
  return {
    sent: seq,
    acked: state.acked,
    ackedInWindow: state.ackedInWindow,
    failed: state.failed,
    errors: state.errors,
    startedAt,
    endedAt,
    ackLatencies: state.ackLatencies,
    pacerLag,
    unanswered,
    cpu: cpuSince(cpuMark),
  };
}

function collect(run: string): ChatCollectResult {
  const r = rxFor(run);
  rx.delete(run);
  return { received: r.received, receivedAfterWarmup: r.receivedAfterWarmup, receivedInWindow: r.receivedInWindow, latencies: r.latencies, firstAt: r.firstAt, lastAt: r.lastAt, cpu: cpuSince(rxCpuMark) };
}

async function closeAll(c: Extract<Command, { cmd: 'close' }>): Promise<ResultMap['close']> {
  const t0 = nowMs();
  let closed = 0;
  let terminated = 0;
  let dropped = 0;
  let next = 0;
  const list = clients.splice(0);
  byAddress.clear();
  const raws = rawClients.splice(0);
  let nextRaw = 0;
  const worker = async () => {
    while (nextRaw < raws.length) {
      const r = raws[nextRaw++]!;
      if (r.dropped || r.socket.destroyed) {
        dropped++;
        continue;
      }
      if ((await rawClose(r, c.timeoutMs)) === 'closed') closed++;
      else terminated++;
    }
    while (next < list.length) {
      const { ws } = list[next++]!;
      if (ws.readyState === WebSocket.CLOSED) {
        dropped++;
        continue;
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          ws.terminate();
          terminated++;
          resolve();
        }, c.timeoutMs);
        ws.once('close', () => {
          clearTimeout(t);
          closed++;
          resolve();
        });
        ws.close(1000, 'bench done');
      });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, c.concurrency) }, worker));
  users = [];
  usedUsers = 0;
  return { closed, terminated, dropped, ms: Math.round(nowMs() - t0) };
}

async function run(c: Command): Promise<ResultMap[CommandName]> {
  switch (c.cmd) {
    case 'prepare':
      return prepare(c);
    case 'connect':
      return connect(c);
    case 'chat':
      return chat(c);
    case 'count':
      return { received: rx.get(c.run)?.received ?? 0 };
    case 'collect':
      return collect(c.run);
    case 'close':
      return closeAll(c);
    case 'exit':
      setImmediate(() => process.exit(0));
      return {};
  }
}

process.on('message', (m: Command) => {
  run(m).then(
    (result) => send({ re: m.id, ok: true, result }),
    (err: unknown) => send({ re: m.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
  );
});
send({ progress: { connected: 0, failed: 0 } });
