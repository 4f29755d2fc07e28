/**
 * The chat side of a load generator: clients that take part in chat runs, the frames they
 * get from the server (acks of their sends, messages for them), timed sends in open or
 * closed loop, and the per-run tallies the orchestrator collects.
 */
import WebSocket from 'ws';
import type { ChatCollectResult, ChatPair, ChatSendResult, Command, PresenceSeen, ResultMap } from './ipc.ts';
import { bump, cpuSince, nowMs } from './stats.ts';

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
  /** Recipients send receipts for this run's messages. */
  receipts: boolean;
  receiptTally: ChatCollectResult['receipts'];
  /** Runs that track ids: every distinct id received, live or by sync. */
  ids: Set<string> | null;
  bySync: number;
  duplicates: number;
}

/** State of one client socket; the shared listeners reach it through the socket. */
export interface Client {
  address: string;
  ws: WebSocket;
  /** Send times of this client's unanswered requests, by request id. */
  inflight: Map<string, number> | null;
  /** Closed-loop refill for this sender, installed by a closed-loop run. */
  onAck: ((c: Client) => void) | null;
  /** Message ids to acknowledge as delivered, by sender, flushed every 30 ms (as the web SDK does). */
  toAck: Map<string, string[]> | null;
}

const CLIENT = Symbol('client');
type Tagged = WebSocket & { [CLIENT]?: Client };

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
  ackedIds: string[] | null;
} | null = null;
/** The run whose recipients catch up by `chat.sync` after a reconnect, and where from. */
let syncRun: { run: string; after: string } | null = null;
const presenceSeen: PresenceSeen[] = [];
let requestSeq = 0;
/** Answers awaited by `request()`, by request id (`q…`). */
const awaited = new Map<string, (f: Frame) => void>();
let rxCpuMark: NodeJS.CpuUsage = process.cpuUsage();

/** Makes a connected socket a chat client: its frames are counted, and runs can send from it. */
export function addChatClient(address: string, ws: WebSocket): Client {
  const client: Client = { address, ws, inflight: null, onAck: null, toAck: null };
  (ws as Tagged)[CLIENT] = client;
  ws.on('message', onFrame);
  byAddress.set(client.address, client);
  return client;
}

/** Chat clients are closed by their owner; this only forgets them. */
export function forgetChatClients(): void {
  byAddress.clear();
}

/** Messages of `run` received here so far. */
export function receivedSoFar(run: string): number {
  return rx.get(run)?.received ?? 0;
}

// ---- frames from the server -------------------------------------------------------------

interface Frame {
  ev?: string;
  re?: string | null;
  ok?: boolean;
  data?: { text?: string | null; id?: string; from?: string; address?: string; online?: boolean | null; messages?: { id: string; text: string | null }[]; cursor?: string | null; more?: boolean };
  error?: { code?: string };
}

/** The run whose recipients send receipts (one chat run at a time per process). */
let receiptRun: RunRx | null = null;
let receiptSeq = 0;

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
  if (f.ev === 'chat.message') {
    const r = received(f.data?.text ?? '', at, f.data?.id ?? '', false);
    if (r?.receipts && f.data?.id && f.data.from) sendReceipts(client, r, f.data.from, f.data.id);
    return;
  }
  if (f.ev === 'presence.update') {
    presenceSeen.push({ to: client.address, address: f.data?.address ?? '', online: f.data?.online ?? null, at });
    return;
  }
  if (typeof f.re === 'string' && f.re.charCodeAt(0) === 113 /* 'q': request() */) {
    awaited.get(f.re)?.(f);
    awaited.delete(f.re);
    return;
  }
  if (typeof f.re === 'string' && f.re.charCodeAt(0) === 115 /* 's': a catch-up sync page */) {
    syncPage(client, f, at);
    return;
  }
  if (f.ev === 'chat.receipt') {
    if (receiptRun) receiptRun.receiptTally.eventsToSenders++;
    return;
  }
  if (typeof f.re === 'string' && f.re.charCodeAt(0) === 114 /* 'r': a receipt's answer */) {
    const t = receiptRun?.receiptTally;
    if (!t) return;
    if (f.ok) t.ok++;
    else {
      t.failed++;
      bump(t.errors, f.error?.code ?? 'unknown');
    }
    return;
  }
  if (typeof f.re === 'string' && client.inflight) {
    const sentAt = client.inflight.get(f.re);
    if (sentAt === undefined) return;
    client.inflight.delete(f.re);
    if (tx) {
      if (f.ok) {
        tx.acked++;
        if (tx.ackedIds && f.data?.id) tx.ackedIds.push(f.data.id);
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

/** Text layout: `<run>|<sent (or scheduled) epoch ms>|<1 if sent during warm-up>|<padding>`. */
function received(text: string, at: number, id: string, viaSync: boolean): RunRx | null {
  const a = text.indexOf('|');
  const b = text.indexOf('|', a + 1);
  if (a < 0 || b < 0) return null;
  const r = rxFor(text.slice(0, a));
  if (r.ids) {
    if (r.ids.has(id)) {
      r.duplicates++;
      return null;
    }
    r.ids.add(id);
    if (viaSync) {
      r.bySync++;
      return null;
    }
  }
  if (r.received === 0) r.firstAt = at;
  r.received++;
  r.lastAt = at;
  if (at >= r.windowStart && at <= r.windowEnd) r.receivedInWindow++;
  if (text.charCodeAt(b + 1) === 48 /* '0' */) {
    r.receivedAfterWarmup++;
    r.latencies.push(Math.round((at - Number(text.slice(a + 1, b))) * 1000) / 1000);
  }
  return r;
}

/**
 * What the web SDK sends for a message that arrives in an open conversation: `chat.read` up
 * to it at once, and `chat.delivered` for it in a batch flushed 30 ms after the first.
 */
function sendReceipts(client: Client, r: RunRx, from: string, id: string): void {
  const t = r.receiptTally;
  client.ws.send(`{"id":"r${++receiptSeq}","type":"chat.read","peer":"${from}","upTo":"${id}"}`);
  t.read++;
  if (!client.toAck) {
    client.toAck = new Map();
    setTimeout(() => {
      const batch = client.toAck!;
      client.toAck = null;
      for (const [peer, ids] of batch) {
        client.ws.send(`{"id":"r${++receiptSeq}","type":"chat.delivered","peer":"${peer}","ids":${JSON.stringify(ids)}}`);
        t.delivered++;
      }
    }, 30);
  }
  const ids = client.toAck.get(from);
  if (ids) ids.push(id);
  else client.toAck.set(from, [id]);
}

function rxFor(run: string): RunRx {
  let r = rx.get(run);
  if (!r) {
    const receiptTally = { delivered: 0, read: 0, ok: 0, failed: 0, errors: {}, eventsToSenders: 0 };
    rx.set(run, (r = { received: 0, receivedAfterWarmup: 0, receivedInWindow: 0, windowStart: Infinity, windowEnd: -Infinity, latencies: [], firstAt: 0, lastAt: 0, receipts: false, receiptTally, ids: null, bySync: 0, duplicates: 0 }));
  }
  return r;
}

// ---- runs ------------------------------------------------------------------------------

function chatFrame(id: string, to: string, clientId: string, text: string): string {
  return `{"id":"${id}","type":"chat.send","to":"${to}","clientId":"${clientId}","kind":"text","text":"${text}"}`;
}

export async function chat(c: Extract<Command, { cmd: 'chat' }>): Promise<ChatSendResult> {
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
  r.receipts = c.receipts;
  if (c.trackIds) r.ids ??= new Set();
  receiptRun = r;
  syncRun = c.trackIds && c.syncAfter !== undefined ? { run, after: c.syncAfter } : null;
  tx = { run, acked: 0, ackedInWindow: 0, failed: 0, errors: {}, ackLatencies: [], warmupEndsAt, endsAt: endAt, ackedIds: c.trackIds ? [] : null };
  const state = tx;
  const pacerLag: number[] = [];
  let seq = 0;
  const tag = `${run}-${process.pid}`;
  const sendOne = (s: { client: Client; to: string }, scheduled?: number) => {
    const id = String(++seq);
    const at = nowMs();
    const from = c.latencyFrom === 'scheduled' && scheduled !== undefined ? scheduled : at;
    const text = `${run}|${from.toFixed(3)}|${from < warmupEndsAt ? 1 : 0}|${pad}`;
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
          sendOne(senders[k % senders.length]!, scheduled);
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
    ...(state.ackedIds ? { ackedIds: state.ackedIds } : {}),
  };
}

export function collect(run: string): ChatCollectResult {
  const r = rxFor(run);
  rx.delete(run);
  if (receiptRun === r) receiptRun = null;
  if (syncRun?.run === run) syncRun = null;
  return {
    ...(r.ids ? { ids: [...r.ids], bySync: r.bySync, duplicates: r.duplicates } : {}),
    received: r.received,
    receivedAfterWarmup: r.receivedAfterWarmup,
    receivedInWindow: r.receivedInWindow,
    latencies: r.latencies,
    firstAt: r.firstAt,
    lastAt: r.lastAt,
    receipts: r.receiptTally,
    cpu: cpuSince(rxCpuMark),
  };
}

// ---- reconnects, presence, single requests ----------------------------------------------

/**
 * A recipient back after its node died asks for what it missed, as the SDK does on
 * reconnect: `chat.sync` pages from the run's starting cursor (the repeats are dropped by id).
 */
export function catchUp(client: Client): void {
  if (!syncRun) return;
  client.ws.send(`{"id":"s${++requestSeq}","type":"chat.sync","after":"${syncRun.after}","limit":500}`);
}

function syncPage(client: Client, f: Frame, at: number): void {
  for (const m of f.data?.messages ?? []) received(m.text ?? '', at, m.id, true);
  if (f.data?.more && f.data.cursor && syncRun) client.ws.send(`{"id":"s${++requestSeq}","type":"chat.sync","after":"${f.data.cursor}","limit":500}`);
}

export function takePresenceEvents(): PresenceSeen[] {
  return presenceSeen.splice(0);
}

/** One request from the chat client of `from`, answered with what the server said. */
export function request(from: string, body: Record<string, unknown>, timeoutMs: number): Promise<ResultMap['request']> {
  const client = byAddress.get(from);
  if (!client) return Promise.reject(new Error(`${from} has no chat client here`));
  const id = `q${++requestSeq}`;
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      awaited.delete(id);
      resolve({ ok: false, data: null, error: 'timeout' });
    }, timeoutMs);
    awaited.set(id, (f) => {
      clearTimeout(t);
      resolve({ ok: f.ok === true, data: f.data ?? null, error: f.ok ? null : (f.error?.code ?? 'unknown') });
    });
    client.ws.send(JSON.stringify({ ...body, id }));
  });
}
