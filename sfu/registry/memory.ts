import { score, type Placement, type SfuRegistry, type WorkerLoad } from './registry.ts';

/** The embedded mode's registry: this process's one SFU node. */
export class MemorySfuRegistry implements SfuRegistry {
  private readonly nodes = new Map<string, { at: number; workers: WorkerLoad[]; draining: boolean; pending: Map<number, number> }>();
  private readonly calls = new Map<string, Placement>();

  constructor(
    private readonly staleMs: number,
    private readonly maxConsumers: number,
  ) {}

  async heartbeat(node: string, workers: WorkerLoad[], draining: boolean, now: number): Promise<void> {
    this.nodes.set(node, { at: now, workers, draining, pending: new Map() });
  }
  async remove(node: string): Promise<void> {
    this.nodes.delete(node);
  }
  async place(callId: string, now: number): Promise<Placement | null> {
    const existing = this.calls.get(callId);
    if (existing) return existing;
    let best: (Placement & { s: number }) | null = null;
    for (const [node, n] of this.nodes) {
      if (n.draining || now - n.at > this.staleMs) continue;
      for (const w of n.workers) {
        if (!w.alive || w.consumers >= this.maxConsumers) continue;
        const s = score(w, n.pending.get(w.index) ?? 0);
        if (!best || s < best.s) best = { node, worker: w.index, s };
      }
    }
    if (!best) return null;
    const n = this.nodes.get(best.node)!;
    n.pending.set(best.worker, (n.pending.get(best.worker) ?? 0) + 1);
    const p = { node: best.node, worker: best.worker };
    this.calls.set(callId, p);
    return p;
  }
  async lookup(callId: string): Promise<Placement | null> {
    return this.calls.get(callId) ?? null;
  }
  async release(callId: string): Promise<void> {
    this.calls.delete(callId);
  }
  async replace(callId: string, deadNode: string, now: number): Promise<Placement | null> {
    if (this.calls.get(callId)?.node === deadNode) this.calls.delete(callId);
    return this.place(callId, now);
  }
  async staleNodes(now: number): Promise<string[]> {
    return [...this.nodes].filter(([, n]) => now - n.at > this.staleMs).map(([id]) => id);
  }
  async callsOn(node: string): Promise<string[]> {
    return [...this.calls].filter(([, p]) => p.node === node).map(([id]) => id);
  }
  async claimRecovery(): Promise<boolean> {
    return true;
  }
  async forget(node: string): Promise<void> {
    this.nodes.delete(node);
  }
}
