import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { REDIS_URL, clearPrefix, testPrefix } from '../../testkit/redis.ts';
import { measureCallSetup } from './call-setup.ts';
import { measureCapacity } from './capacity.ts';
import { measureControlPlane } from './control-plane.ts';

/** `npm run bench:sfu` → bench/results/sfu.json */
const out = fileURLToPath(new URL('../results/sfu.json', import.meta.url));
const started = Date.now();
const log = (msg: string) => process.stderr.write(`[bench:sfu] ${msg}\n`);
// Bounded whatever happens.
setTimeout(() => {
  log('time limit reached');
  process.exit(2);
}, 20 * 60_000).unref();

log('call setup through signaling + SFU processes (werift peers)…');
const callSetup = await measureCallSetup(Number(process.env.BENCH_CALLS ?? 30));
log(JSON.stringify(callSetup));

log('control-plane cost per consumer…');
const prefix = testPrefix('benchsfu-cp');
const controlPlane = await measureControlPlane(Number(process.env.BENCH_CONSUMERS ?? 300), REDIS_URL, prefix);
await clearPrefix(prefix);
log(JSON.stringify(controlPlane));

log('consumers one worker sustains (synthetic RTP over PlainTransports)…');
const steps = (process.env.BENCH_STEPS ?? '100,200,300,400,500,600,800').split(',').map(Number);
const capacity = await measureCapacity(steps, Number(process.env.BENCH_STEP_SECONDS ?? 5));
for (const s of capacity) log(JSON.stringify(s));
// The largest step the worker forwarded ≥ 99 % of the packets for, using under 90 % of a core.
const sustained = capacity.filter((s) => s.forwardRatio >= 0.99 && s.workerCpu < 0.9).at(-1)?.consumers ?? 0;

const result = {
  benchmark: 'sfu',
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version },
  callSetup,
  controlPlane,
  capacity: { steps, secondsPerStep: Number(process.env.BENCH_STEP_SECONDS ?? 5), results: capacity, sustainedConsumersPerWorker: sustained, load: 'per consumer: video 150 pkt/s (~1.3 Mbit/s) or Opus 50 pkt/s, alternating; forwarded = worker counters, delivered = what one local UDP socket in this process could read' },
  durationSec: Math.round((Date.now() - started) / 1000),
};
mkdirSync(fileURLToPath(new URL('../results', import.meta.url)), { recursive: true });
writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
log(`wrote ${out}`);
process.exit(0);
