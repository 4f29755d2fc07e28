export interface WorkerLoad {
  index: number;
  alive: boolean;
  consumers: number;
  producers: number;
  rooms: number;
  cpu: number;
}

export interface Placement {
  node: string;
  worker: number;
}

/**
 * Which SFU nodes are alive with what load, and where each call is placed. Placement is
 * atomic: concurrent `place` calls for one call agree, and a node whose heartbeat is stale
 * is never chosen.
 */
export interface SfuRegistry {
  heartbeat(node: string, workers: WorkerLoad[], draining: boolean, now: number): Promise<void>;
  remove(node: string): Promise<void>;
  place(callId: string, now: number): Promise<Placement | null>;
  lookup(callId: string): Promise<Placement | null>;
  release(callId: string): Promise<void>;
  /** Moves a call off `deadNode` (if it is still there) to a live node. */
  replace(callId: string, deadNode: string, now: number): Promise<Placement | null>;
  staleNodes(now: number): Promise<string[]>;
  callsOn(node: string): Promise<string[]>;
  /** One caller wins the right to recover a dead node's calls. */
  claimRecovery(node: string, by: string): Promise<boolean>;
  forget(node: string): Promise<void>;
}

/** Expected load of a call that was placed but has not shown up in a heartbeat yet. */
export const PENDING_WEIGHT = 4;

export function score(w: WorkerLoad, pending: number): number {
  return w.consumers + w.producers + PENDING_WEIGHT * (w.rooms + pending);
}
