/**
 * Command-line flags of `blockrtc loadtest`, their defaults and the maximum each accepts.
 * A value above its maximum is refused with a message naming the flag and the limit, so a
 * typo cannot turn a trial run into an outage.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface LoadtestOptions {
  urls: string[];
  users: number;
  seed: string;
  workers: number;
  sourceAddresses: string[];
  /** Connections opened per second over all workers. */
  connectRate: number;
  /** Seconds to spread the connects over (sets connectRate to users / ramp). */
  rampSec: number | null;
  /** Seconds of the mix after every user has connected. */
  durationSec: number;
  msgsPerMin: number;
  typingPerMin: number;
  /** Disconnect/reconnect cycles per user per minute. */
  churnPerMin: number;
  /** Read receipts: a recipient marks a conversation read this often per minute while it receives. */
  readsPerMin: number;
  calls: number;
  participants: number;
  video: boolean;
  audioKbps: number;
  videoKbps: number;
  textBytes: number;
  tokenCache: string | null;
  report: string | null;
  quiet: boolean;
  origin: string | null;
}

interface Flag {
  key: keyof LoadtestOptions;
  kind: 'int' | 'num' | 'str' | 'bool' | 'list' | 'range';
  min?: number;
  max?: number;
  help: string;
}

export const FLAGS: Record<string, Flag> = {
  '--url': { key: 'urls', kind: 'list', help: 'deployment base URL(s), comma-separated; users are spread over them (default http://localhost:8080)' },
  '--users': { key: 'users', kind: 'int', min: 1, max: 1_000_000, help: 'wallets signed in and connected' },
  '--seed': { key: 'seed', kind: 'str', help: 'key seed: wallet i has the key keccak256("<seed>:<i>"); the same seed reuses the same users' },
  '--workers': { key: 'workers', kind: 'int', min: 1, max: 64, help: 'worker processes the users are spread over' },
  '--source-addresses': { key: 'sourceAddresses', kind: 'range', help: 'local addresses to connect from, e.g. 127.0.0.1-127.0.0.8 or a comma list' },
  '--connect-rate': { key: 'connectRate', kind: 'num', min: 1, max: 20_000, help: 'connections opened per second (all workers together)' },
  '--ramp': { key: 'rampSec', kind: 'num', min: 1, max: 3600, help: 'seconds to connect everyone in (instead of --connect-rate: rate = users / ramp)' },
  '--duration': { key: 'durationSec', kind: 'num', min: 1, max: 3600, help: 'seconds the mix runs once everyone is connected' },
  '--msgs-per-min': { key: 'msgsPerMin', kind: 'num', min: 0, max: 600, help: 'chat messages each user sends per minute' },
  '--typing-per-min': { key: 'typingPerMin', kind: 'num', min: 0, max: 60, help: 'typing indicators (start + stop) per user per minute' },
  '--churn-per-min': { key: 'churnPerMin', kind: 'num', min: 0, max: 10, help: 'disconnect/reconnect cycles per user per minute (presence churn)' },
  '--reads-per-min': { key: 'readsPerMin', kind: 'num', min: 0, max: 60, help: 'read receipts per receiving user per minute' },
  '--calls': { key: 'calls', kind: 'int', min: 0, max: 1000, help: 'concurrent calls' },
  '--participants': { key: 'participants', kind: 'int', min: 2, max: 16, help: 'participants per call, each a WebRTC peer' },
  '--video': { key: 'video', kind: 'bool', help: 'calls send video too (VP8-shaped synthetic frames)' },
  '--audio-kbps': { key: 'audioKbps', kind: 'num', min: 8, max: 256, help: 'synthetic audio bitrate per sender' },
  '--video-kbps': { key: 'videoKbps', kind: 'num', min: 50, max: 4000, help: 'synthetic video bitrate per sender' },
  '--text-bytes': { key: 'textBytes', kind: 'int', min: 40, max: 4000, help: 'size of each chat message text' },
  '--token-cache': { key: 'tokenCache', kind: 'str', help: 'token cache file ("none" disables it)' },
  '--report': { key: 'report', kind: 'str', help: 'write the JSON report here' },
  '--origin': { key: 'origin', kind: 'str', help: 'Origin header to send on sign-in and WebSocket upgrades (default: none, like any non-browser client)' },
  '--quiet': { key: 'quiet', kind: 'bool', help: 'no progress lines' },
};

export function defaults(): LoadtestOptions {
  return {
    urls: ['http://localhost:8080'],
    users: 100,
    seed: 'blockrtc-loadtest',
    workers: 1,
    sourceAddresses: ['127.0.0.1'],
    connectRate: 50,
    rampSec: null,
    durationSec: 30,
    msgsPerMin: 6,
    typingPerMin: 2,
    churnPerMin: 0,
    readsPerMin: 2,
    calls: 0,
    participants: 2,
    video: false,
    audioKbps: 32,
    videoKbps: 300,
    textBytes: 64,
    tokenCache: join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'blockrtc', 'loadtest-tokens.json'),
    report: null,
    quiet: false,
    origin: null,
  };
}

/** File descriptors one process may hold here, with room for the process's own. */
export const SOCKETS_PER_WORKER = 19_000;
/** Ephemeral ports one source address has towards one destination. */
export const PORTS_PER_SOURCE = 28_000;

export class UsageError extends Error {}

/** Expands `127.0.0.1-127.0.0.8` (last octet range) and comma lists. */
export function parseAddresses(v: string): string[] {
  const out: string[] = [];
  for (const part of v.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+\.\d+\.\d+\.)(\d+)-(?:\d+\.\d+\.\d+\.)?(\d+)$/.exec(part);
    if (m) {
      const [from, to] = [Number(m[2]), Number(m[3])];
      if (from > to || to > 255) throw new UsageError(`--source-addresses: bad range ${part}`);
      for (let i = from; i <= to; i++) out.push(`${m[1]}${i}`);
    } else if (/^\d+\.\d+\.\d+\.\d+$/.test(part) || part.includes(':')) out.push(part);
    else throw new UsageError(`--source-addresses: ${JSON.stringify(part)} is not an address or a range`);
  }
  if (out.length === 0) throw new UsageError('--source-addresses: no address given');
  return out;
}

export function parseArgs(argv: string[]): LoadtestOptions {
  const o = defaults();
  const rec = o as unknown as Record<string, unknown>;
  const given = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    let name = argv[i]!;
    let value: string | undefined;
    const eq = name.indexOf('=');
    if (eq > 0) [name, value] = [name.slice(0, eq), name.slice(eq + 1)];
    const flag = FLAGS[name];
    if (!flag) throw new UsageError(`unknown flag ${name}`);
    given.add(name);
    if (flag.kind === 'bool') {
      rec[flag.key] = value === undefined ? true : value !== 'false';
      continue;
    }
    if (value === undefined) value = argv[++i];
    if (value === undefined) throw new UsageError(`${name} needs a value`);
    switch (flag.kind) {
      case 'int':
      case 'num': {
        const n = Number(value);
        if (!Number.isFinite(n) || (flag.kind === 'int' && !Number.isInteger(n))) throw new UsageError(`${name}: ${JSON.stringify(value)} is not ${flag.kind === 'int' ? 'a whole number' : 'a number'}`);
        if (flag.max !== undefined && n > flag.max) throw new UsageError(`${name} ${n} is above the maximum of ${flag.max}`);
        if (flag.min !== undefined && n < flag.min) throw new UsageError(`${name} ${n} is below the minimum of ${flag.min}`);
        rec[flag.key] = n;
        break;
      }
      case 'str':
        rec[flag.key] = flag.key === 'tokenCache' && value === 'none' ? null : value;
        break;
      case 'list':
        rec[flag.key] = value.split(',').map((s) => s.trim().replace(/\/+$/, '')).filter(Boolean);
        break;
      case 'range':
        rec[flag.key] = parseAddresses(value);
        break;
    }
  }
  check(o, given);
  return o;
}

/** Limits that depend on several flags together. */
function check(o: LoadtestOptions, given: Set<string>): void {
  if (given.has('--ramp') && given.has('--connect-rate')) throw new UsageError('give --ramp or --connect-rate, not both');
  if (o.rampSec !== null) {
    o.connectRate = o.users / o.rampSec;
    if (o.connectRate > FLAGS['--connect-rate']!.max!) throw new UsageError(`--ramp ${o.rampSec} for ${o.users} users is ${Math.round(o.connectRate)} connects/s, above the maximum of ${FLAGS['--connect-rate']!.max}`);
  }
  for (const u of o.urls) {
    let url: URL;
    try {
      url = new URL(u);
    } catch {
      throw new UsageError(`--url: ${JSON.stringify(u)} is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--url: ${u} must be http:// or https://`);
  }
  if (o.users < 2) throw new UsageError('--users must be at least 2 (users chat in pairs)');
  if (o.users % 2 !== 0) throw new UsageError('--users must be even (users chat in pairs)');
  const perWorker = Math.ceil(o.users / o.workers);
  if (perWorker > SOCKETS_PER_WORKER) {
    throw new UsageError(`--users ${o.users} over --workers ${o.workers} is ${perWorker} connections per worker, above the maximum of ${SOCKETS_PER_WORKER} (one process's file descriptors): add workers`);
  }
  const perSource = Math.ceil(o.users / (o.sourceAddresses.length * o.urls.length));
  if (perSource > PORTS_PER_SOURCE) {
    throw new UsageError(`${perSource} connections per source address and target is above the maximum of ${PORTS_PER_SOURCE} (ephemeral ports): add --source-addresses`);
  }
  if (o.workers > o.users / 2) throw new UsageError(`--workers ${o.workers} is more than the ${o.users / 2} user pairs`);
  // Call participants come from one worker's users (a call is driven by one process).
  const callUsers = o.calls * o.participants;
  const perWorkerUsers = Math.floor(o.users / o.workers / 2) * 2;
  const callsPerWorker = Math.ceil(o.calls / o.workers);
  if (callUsers > 0 && callsPerWorker * o.participants > perWorkerUsers) {
    throw new UsageError(`--calls ${o.calls} × --participants ${o.participants} needs ${callsPerWorker * o.participants} users per worker, but each worker has ${perWorkerUsers}: add --users`);
  }
  if (o.calls * o.participants > 2000) throw new UsageError(`--calls × --participants is ${o.calls * o.participants}, above the maximum of 2000 WebRTC peers`);
}

export function usage(): string {
  const lines = Object.entries(FLAGS).map(([name, f]) => {
    const lim = f.max !== undefined ? ` (max ${f.max})` : '';
    return `  ${name.padEnd(20)} ${f.help}${lim}`;
  });
  const d = defaults();
  return `usage: blockrtc loadtest [flags]

Signs in --users wallets through SIWE, connects them at --connect-rate, runs the chat/call
mix for --duration seconds, then leaves calls, closes sockets and prints a summary.

flags:
${lines.join('\n')}

defaults: --users ${d.users} --workers ${d.workers} --connect-rate ${d.connectRate} --duration ${d.durationSec} --msgs-per-min ${d.msgsPerMin} --typing-per-min ${d.typingPerMin} --reads-per-min ${d.readsPerMin} --calls 0 --participants 2 --audio-kbps ${d.audioKbps} --video-kbps ${d.videoKbps}
token cache: ${d.tokenCache}`;
}
