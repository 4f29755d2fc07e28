/**
 * Messages between the orchestrator (run.ts) and load generator processes (loadgen.ts),
 * carried over the Node IPC channel. Every command has an id; the reply carries it as `re`.
 */

export interface Target {
  /** ws://host:port/ws */
  url: string;
  /** How many of the prepared users connect to this target, taken in order. */
  count: number;
}

/**
 * What a client does when the server drops it: reconnect as the web SDK does (exponential
 * backoff with jitter, web/sdk/signal.ts) to one of `urls` at random, as a load balancer
 * would spread the clients of a dead node over the live ones.
 */
export interface ReconnectSpec {
  urls: string[];
  initialDelayMs: number;
  maxDelayMs: number;
  jitter: number;
  /** Stop trying after this long (bounded like everything in the bench). */
  giveUpAfterMs: number;
}

export interface ReconnectStats {
  dropped: number;
  reconnected: number;
  gaveUp: number;
  /** Dropped and not back yet. */
  pending: number;
  attempts: number;
  failedAttempts: number;
  errors: Record<string, number>;
  /** Reconnects completed per epoch second. */
  perSecond: Record<string, number>;
  firstDropAt: number;
  lastReconnectAt: number;
}

/** A `presence.update` a chat client of this process received. */
export interface PresenceSeen {
  to: string;
  address: string;
  online: boolean | null;
  at: number;
}

export interface ChatPair {
  from: string;
  to: string;
}

export type Command =
  /** Creates users (random checksummed addresses unless given), a session each in the nodes' Redis, and mints their tokens. */
  | { cmd: 'prepare'; id: number; count: number; addresses?: string[]; jwtSecret: string; ttlSec: number; redisUrl: string; redisPrefix: string; redisClusterNodes?: string[] }
  /** Connects the prepared users; resolves when every one got `session.hello` or failed. */
  | {
      cmd: 'connect';
      id: number;
      targets: Target[];
      localAddress: string;
      concurrency: number;
      timeoutMs: number;
      /** `raw`: the minimal idle client (cheap handshakes); `ws`: the full client, for chat. */
      client: 'raw' | 'ws';
      /** Reconnect these clients when the server drops them (absent: they stay gone). */
      reconnect?: ReconnectSpec;
    }
  /** Sends chat messages from local senders to their partners (wherever those are connected). */
  | {
      cmd: 'chat';
      id: number;
      run: string;
      mode: 'open' | 'closed';
      pairs: ChatPair[];
      /** Open loop: messages per second offered by this process. */
      rate: number;
      /** Closed loop: unacknowledged sends allowed per sender. */
      window: number;
      durationMs: number;
      /** Messages sent before this much time has passed are left out of latency figures. */
      warmupMs: number;
      textBytes: number;
      /** Epoch ms (high resolution) at which every process starts sending. */
      startAt: number;
      /**
       * What delivery latency is measured from: the moment the message was sent, or (open
       * loop) the moment the schedule said to send it, so that generator stalls count too.
       */
      latencyFrom: 'sent' | 'scheduled';
      /**
       * Recipients answer as the web SDK does with the conversation open: `chat.delivered`
       * batched per 30 ms, and `chat.read` up to each message as it arrives.
       */
      receipts: boolean;
      /**
       * Keep every acked and received message id of the run (for loss checks), and let
       * recipients that reconnect catch up with `chat.sync` from `syncAfter` (the newest id
       * stored before the run), de-duplicated by id.
       */
      trackIds?: boolean;
      syncAfter?: string;
    }
  /** Number of `chat.message` events received for a run so far. */
  | { cmd: 'count'; id: number; run: string }
  /** The receiving side's figures for a run. */
  | { cmd: 'collect'; id: number; run: string }
  | { cmd: 'close'; id: number; concurrency: number; timeoutMs: number }
  | { cmd: 'exit'; id: number }
  /** Reconnect figures of this process since it started. */
  | { cmd: 'reconnectStats'; id: number }
  /** The `presence.update` events received so far (the list is emptied). */
  | { cmd: 'presenceEvents'; id: number }
  /** One request from the chat client of `from`; resolves with the server's answer. */
  | { cmd: 'request'; id: number; from: string; body: Record<string, unknown>; timeoutMs: number }
  /** Closes the idle connections of these users, waits `downMs`, and opens them again on the same node. */
  | { cmd: 'cycle'; id: number; addresses: string[]; downMs: number; timeoutMs: number };

export type CommandName = Command['cmd'];

export interface CpuUsage {
  userMs: number;
  systemMs: number;
}

export interface PrepareResult {
  addresses: string[];
  ms: number;
}

export interface ConnectResult {
  requested: number;
  connected: number;
  failed: number;
  errors: Record<string, number>;
  /** Epoch ms (high resolution) of the first attempt and the last hello. */
  startedAt: number;
  finishedAt: number;
  /** Attempt → `session.hello`, ms, one per established connection. */
  latencies: number[];
  cpu: CpuUsage;
  rssBytes: number;
}

export interface ChatSendResult {
  sent: number;
  acked: number;
  /** Acks that arrived between the end of the warm-up and the end of the run. */
  ackedInWindow: number;
  failed: number;
  errors: Record<string, number>;
  startedAt: number;
  endedAt: number;
  /** Send → ack (stored and answered), ms, for sends after the warm-up. */
  ackLatencies: number[];
  /** How late the open-loop pacer sent relative to its schedule, ms. */
  pacerLag: number[];
  /** Sends still unanswered when the run ended. */
  unanswered: number;
  cpu: CpuUsage;
  /** Server ids of acked messages (runs with `trackIds`). */
  ackedIds?: string[];
}

export interface ChatCountResult {
  received: number;
}

export interface ChatCollectResult {
  received: number;
  receivedAfterWarmup: number;
  /** Messages that arrived between the end of the warm-up and the end of the run. */
  receivedInWindow: number;
  /** Send → `chat.message` at the recipient, ms, for sends after the warm-up. */
  latencies: number[];
  firstAt: number;
  lastAt: number;
  /** Receipt requests the recipients here sent, and how the server answered them. */
  receipts: { delivered: number; read: number; ok: number; failed: number; errors: Record<string, number>; eventsToSenders: number };
  /** This process's CPU since the run started (sending and receiving). */
  cpu: CpuUsage;
  /** Runs with `trackIds`: distinct ids received (live or by sync), how many only by sync, and repeats dropped. */
  ids?: string[];
  bySync?: number;
  duplicates?: number;
}

export interface CloseResult {
  closed: number;
  terminated: number;
  /** Connections the server had closed (or that dropped) before we closed them. */
  dropped: number;
  ms: number;
}

export interface ResultMap {
  prepare: PrepareResult;
  connect: ConnectResult;
  chat: ChatSendResult;
  count: ChatCountResult;
  collect: ChatCollectResult;
  close: CloseResult;
  exit: Record<string, never>;
  reconnectStats: ReconnectStats;
  presenceEvents: { events: PresenceSeen[] };
  request: { ok: boolean; data: unknown; error: string | null };
  cycle: { closed: number; reopened: number; failed: number; errors: Record<string, number> };
}

export type Reply =
  | { re: number; ok: true; result: ResultMap[CommandName] }
  | { re: number; ok: false; error: string }
  | { progress: { connected: number; failed: number } };
