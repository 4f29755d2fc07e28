import type { Relation } from '../../db/blocks.ts';

/** What the cache reads on a miss (BlockStore.relation). */
export type RelationSource = (actor: string, peer: string) => Promise<Relation>;

/** Tells every node holding `actor` (this one included) to forget what it knows of `actor` → `peer`. */
export type RelationPublisher = (actor: string, peer: string) => void;

/** Which of `owners` accepted `viewer` (uncached: for reads that are not on a hot path). */
export type AcceptedSource = (viewer: string, owners: string[]) => Promise<Set<string>>;

/** What the chat, presence, call and request services ask about two users. */
export interface Relations {
  /** Cached; only for an `actor` this node holds a connection of (see RelationCache). */
  get(actor: string, peer: string): Promise<Relation>;
  sent(actor: string, peer: string): void;
  changed(actor: string, peer: string): void;
  acceptedBy(viewer: string, owners: string[]): Promise<Set<string>>;
}

interface Entry {
  value: Relation;
  expires: number;
}

/** Entries one node keeps at most; past it the cache starts over (a miss costs one query). */
const MAX_ENTRIES = 200_000;

/**
 * Per-node cache of what a user may do towards another (typing, receipts, ringing), so that
 * relaying typing and receipts costs no PostgreSQL round trip.
 *
 * Entries are keyed by the acting user, and only a node holding one of that user's
 * connections acts for it. Every change (block, unblock, accept, a first message) is
 * published on the acting user's bus channel, which reaches exactly the nodes holding that
 * user; a node that does not hold it misses the note, so it forgets the user's entries
 * whenever one of the user's connections arrives (`forget`). A load that overlapped any
 * invalidation is not kept (one generation counter: invalidations are few next to reads).
 * The TTL only bounds memory and how long a note lost to a Redis outage can matter.
 */
export class RelationCache implements Relations {
  private readonly entries = new Map<string, Map<string, Entry>>();
  /** Pairs whose first message this node already announced (acceptance is never taken back). */
  private readonly announced = new Map<string, Set<string>>();
  private announcedSize = 0;
  /** Bumped by every invalidation: a load that overlapped one is answered but not kept. */
  private generation = 0;
  private size = 0;

  constructor(
    private readonly load: RelationSource,
    private readonly publish: RelationPublisher,
    readonly acceptedBy: AcceptedSource,
    private readonly ttlMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  async get(actor: string, peer: string): Promise<Relation> {
    const hit = this.entries.get(actor)?.get(peer);
    if (hit && hit.expires > this.now()) return hit.value;
    const generation = this.generation;
    const value = await this.load(actor, peer);
    if (this.generation === generation) this.store(actor, peer, value);
    return value;
  }

  /**
   * `actor` sent `peer` a message: that accepts the peer (the store set it in the same
   * statement). Published only when this node did not know it already, so a conversation
   * costs one note per node, not one per message.
   */
  sent(actor: string, peer: string): void {
    if (this.entries.get(actor)?.get(peer)?.value.accepted) return;
    let mine = this.announced.get(actor);
    if (mine?.has(peer)) return;
    if (this.announcedSize >= MAX_ENTRIES) {
      this.announced.clear();
      this.announcedSize = 0;
    }
    if (!mine) this.announced.set(actor, (mine = new Set()));
    mine.add(peer);
    this.announcedSize++;
    this.changed(actor, peer);
  }

  /** Something `actor` may do towards `peer` changed: forget it here and on the other nodes holding `actor`. */
  changed(actor: string, peer: string): void {
    this.invalidate(actor, peer);
    this.publish(actor, peer);
  }

  /** A note from the bus (or this node): drop one entry. */
  invalidate(actor: string, peer: string): void {
    this.generation++;
    const mine = this.entries.get(actor);
    if (mine?.delete(peer)) this.size--;
  }

  /** The user's first connection on this node: notes published while it was elsewhere never came here. */
  forget(actor: string): void {
    this.generation++;
    this.announcedSize -= this.announced.get(actor)?.size ?? 0;
    this.announced.delete(actor);
    const mine = this.entries.get(actor);
    if (!mine) return;
    this.size -= mine.size;
    this.entries.delete(actor);
  }


  private store(actor: string, peer: string, value: Relation): void {
    if (this.size >= MAX_ENTRIES) {
      this.entries.clear();
      this.size = 0;
    }
    let mine = this.entries.get(actor);
    if (!mine) this.entries.set(actor, (mine = new Map()));
    if (!mine.has(peer)) this.size++;
    mine.set(peer, { value, expires: this.now() + this.ttlMs });
  }
}

/** The one rule for typing and receipts: `actor`'s signals reach `peer` once it accepted the peer and neither blocked the other. */
export function mayReach(r: Relation): boolean {
  return r.accepted && !r.blockedByPeer && !r.blocking;
}
