/**
 * Splits the run over workers: users go in chat pairs (2k, 2k+1), pair k to worker k mod W,
 * so a message's sender and recipient share a process and a clock. User i connects to URL
 * i mod U (with two URLs a pair spans two nodes) from source address i mod S. Calls take
 * their participants from one worker's users, so one process drives each call.
 */
import type { LoadtestOptions } from './args.ts';
import type { WorkerPlan } from './ipc.ts';
import { cacheKey, type TokenCache } from './token-cache.ts';

export function makePlans(o: LoadtestOptions, cache: TokenCache, tokenMinValidMs: number): WorkerPlan[] {
  const plans: WorkerPlan[] = Array.from({ length: o.workers }, (_, w) => ({
    worker: w,
    seed: o.seed,
    origin: o.origin,
    users: [],
    calls: [],
    connectRate: o.connectRate / o.workers,
    mix: { msgsPerMin: o.msgsPerMin, typingPerMin: o.typingPerMin, churnPerMin: o.churnPerMin, readsPerMin: o.readsPerMin, textBytes: o.textBytes, video: o.video, audioKbps: o.audioKbps, videoKbps: o.videoKbps },
    tokenMinValidMs,
  }));
  for (let i = 0; i < o.users; i++) {
    const url = o.urls[i % o.urls.length]!;
    const key = cacheKey(new URL(url).origin, o.seed, i);
    plans[Math.floor(i / 2) % o.workers]!.users.push({
      index: i,
      url,
      source: o.sourceAddresses[i % o.sourceAddresses.length]!,
      cached: cache.get(key, tokenMinValidMs) ?? null,
      address: cache.address(key) ?? null,
    });
  }
  const used = plans.map(() => 0);
  for (let c = 0; c < o.calls; c++) {
    const w = c % o.workers;
    const from = used[w]!;
    used[w] = from + o.participants;
    plans[w]!.calls.push({ id: c, users: plans[w]!.users.slice(from, from + o.participants).map((u) => u.index) });
  }
  return plans;
}
