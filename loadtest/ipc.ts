/**
 * What the orchestrator and its worker processes say to each other (JSON over the fork IPC
 * channel), and the cumulative counters a worker reports: one shape for the per-second
 * progress and the final report, summed over workers.
 */
import type { HistJson } from './hist.ts';
import type { CachedToken } from './token-cache.ts';

export interface MixSettings {
  msgsPerMin: number;
  typingPerMin: number;
  churnPerMin: number;
  readsPerMin: number;
  textBytes: number;
  video: boolean;
  audioKbps: number;
  videoKbps: number;
}

export interface WorkerPlan {
  worker: number;
  seed: string;
  origin: string | null;
  /** Users of this worker by global index, in chat pairs: [a0, b0, a1, b1, …]. */
  users: { index: number; url: string; source: string; cached: CachedToken | null; address: string | null }[];
  /** Each call's participants (global indexes; the first one calls the others). */
  calls: { id: number; users: number[] }[];
  connectRate: number;
  mix: MixSettings;
  /** How long a cached or fresh token must stay valid. */
  tokenMinValidMs: number;
}

export type ToWorker =
  | { type: 'plan'; plan: WorkerPlan }
  | { type: 'signIn' }
  | { type: 'connect'; at: number }
  | { type: 'mix'; at: number; until: number }
  | { type: 'stop' };

export interface Counters {
  signInFresh: number;
  signInCached: number;
  signInFailed: number;
  connectAttempted: number;
  connected: number;
  connectFailed: number;
  /** Sockets open right now. */
  online: number;
  /** Closed by the server or the network, not by us. */
  dropped: number;
  churnDisconnects: number;
  churnReconnects: number;
  churnReconnectFailed: number;
  chatSent: number;
  chatAcked: number;
  chatFailed: number;
  /** Distinct messages of this run that reached their recipient. */
  chatDelivered: number;
  chatDeliveredLive: number;
  chatDeliveredBySync: number;
  chatDuplicates: number;
  receiptDeliveredSent: number;
  receiptReadSent: number;
  receiptAcked: number;
  receiptFailed: number;
  /** Delivered receipts cut off by a planned disconnect (sent again after the sync). */
  receiptInterrupted: number;
  /** Message ids the senders saw reported delivered / read-receipt events they got. */
  receiptDeliveredIdsReceived: number;
  receiptReadEventsReceived: number;
  typingSent: number;
  typingReceived: number;
  callsPlanned: number;
  callsUp: number;
  callsFailed: number;
  participantsLeft: number;
  tokensRefreshed: number;
}

export function zeroCounters(): Counters {
  return {
    signInFresh: 0, signInCached: 0, signInFailed: 0, connectAttempted: 0, connected: 0, connectFailed: 0, online: 0, dropped: 0,
    churnDisconnects: 0, churnReconnects: 0, churnReconnectFailed: 0, chatSent: 0, chatAcked: 0, chatFailed: 0, chatDelivered: 0,
    chatDeliveredLive: 0, chatDeliveredBySync: 0, chatDuplicates: 0, receiptDeliveredSent: 0, receiptReadSent: 0, receiptAcked: 0,
    receiptFailed: 0, receiptInterrupted: 0, receiptDeliveredIdsReceived: 0, receiptReadEventsReceived: 0, typingSent: 0, typingReceived: 0, callsPlanned: 0,
    callsUp: 0, callsFailed: 0, participantsLeft: 0, tokensRefreshed: 0,
  };
}

export type HistName = 'signInMs' | 'connectMs' | 'ackMs' | 'deliveryMs' | 'callSetupMs' | 'firstMediaMs';

/** What one subscriber (receiving participant) measured for one remote track. */
export interface SubscriberStats {
  call: number;
  subscriber: string;
  from: string;
  kind: 'audio' | 'video';
  packets: number;
  expected: number;
  lost: number;
  lossPct: number;
  jitterMs: number;
  kbps: number;
  bytes: number;
  seconds: number;
}

export interface WorkerStatus {
  counters: Counters;
  errors: Record<string, number>;
  hists: Record<HistName, HistJson>;
  /** Delivery latencies since the previous status (for the progress line). */
  recentDelivery: HistJson;
}

export type FromWorker =
  | { type: 'ready' }
  | { type: 'signedIn' }
  | { type: 'connected' }
  | { type: 'mixDone' }
  | { type: 'status'; status: WorkerStatus }
  | { type: 'tokens'; tokens: [number, { address: string; token: string; expiresAt: number }][] }
  | { type: 'done'; status: WorkerStatus; subscribers: SubscriberStats[] }
  | { type: 'fatal'; message: string };
