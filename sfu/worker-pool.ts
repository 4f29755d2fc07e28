import { EventEmitter } from 'node:events';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import type { Logger } from '../infra/logger.ts';
import { PortInUseError } from '../infra/ports.ts';

export interface PoolOptions {
  workers: number;
  listenIp: string;
  announcedAddress: string | null;
  /** Worker i listens on portBase + i (UDP and TCP): a fixed, small set of ports. */
  portBase: number;
  logLevel: types.WorkerLogLevel;
}

/** One mediasoup worker (one core) with its WebRtcServer and live load counters. */
export interface WorkerSlot {
  index: number;
  worker: types.Worker;
  server: types.WebRtcServer;
  consumers: number;
  producers: number;
  rooms: number;
  /** CPU share (0..1 of a core) over the last sample. */
  cpu: number;
  lastCpuMs: number;
  lastSampleAt: number;
  alive: boolean;
}

type PoolEvents = { died: [index: number]; restarted: [index: number] };

/**
 * Starts one worker per core and restarts a worker that dies (after which the calls it
 * carried are rejoined by their clients).
 */
export class WorkerPool extends EventEmitter<PoolEvents> {
  readonly slots: WorkerSlot[] = [];
  private closed = false;

  private constructor(
    private readonly opts: PoolOptions,
    private readonly log: Logger,
  ) {
    super();
  }

  static async create(opts: PoolOptions, log: Logger): Promise<WorkerPool> {
    const pool = new WorkerPool(opts, log);
    try {
      for (let i = 0; i < opts.workers; i++) pool.slots.push(await pool.spawn(i));
    } catch (err) {
      // Workers already started would outlive a failed start-up.
      pool.close();
      throw err;
    }
    return pool;
  }

  private async spawn(index: number): Promise<WorkerSlot> {
    // mediasoup closes its workers when this process gets SIGTERM/SIGINT; draining must keep
    // running calls, so the pool alone decides when workers close.
    const signals = ['SIGTERM', 'SIGINT'] as const;
    const before = new Map(signals.map((s) => [s, new Set(process.listeners(s))]));
    const worker = await mediasoup.createWorker({ logLevel: this.opts.logLevel, appData: { index } });
    for (const s of signals) for (const l of process.listeners(s)) if (!before.get(s)!.has(l)) process.removeListener(s, l);
    const port = this.opts.portBase + index;
    const announced = this.opts.announcedAddress ?? undefined;
    let server: types.WebRtcServer;
    try {
      server = await worker.createWebRtcServer({
        listenInfos: [
          { protocol: 'udp', ip: this.opts.listenIp, announcedAddress: announced, port },
          { protocol: 'tcp', ip: this.opts.listenIp, announcedAddress: announced, port },
        ],
      });
    } catch (err) {
      worker.close();
      // mediasoup reports e.g. "uv_udp_bind() failed [protocol:udp, …]: address already in use".
      const msg = err instanceof Error ? err.message : String(err);
      if (/address already in use/i.test(msg)) {
        const proto = /protocol:\s*(udp|tcp)/i.exec(msg)?.[1]?.toUpperCase() ?? 'UDP/TCP';
        throw new PortInUseError(port, 'SFU_PORT_BASE', `SFU worker ${index} (${proto})`);
      }
      throw err;
    }
    const slot: WorkerSlot = { index, worker, server, consumers: 0, producers: 0, rooms: 0, cpu: 0, lastCpuMs: 0, lastSampleAt: Date.now(), alive: true };
    worker.on('died', (err) => {
      slot.alive = false;
      this.log.error({ err, worker: index, pid: worker.pid }, 'mediasoup worker died; restarting');
      this.emit('died', index);
      if (!this.closed) void this.respawn(index, 0);
    });
    this.log.info({ worker: index, pid: worker.pid, port }, 'mediasoup worker ready');
    return slot;
  }

  private async respawn(index: number, attempt: number): Promise<void> {
    await new Promise((r) => setTimeout(r, Math.min(5000, 200 * 2 ** attempt)));
    if (this.closed) return;
    try {
      this.slots[index] = await this.spawn(index);
      this.emit('restarted', index);
    } catch (err) {
      this.log.error({ err, worker: index }, 'worker restart failed');
      void this.respawn(index, attempt + 1);
    }
  }

  alive(): WorkerSlot[] {
    return this.slots.filter((s) => s.alive);
  }

  /** Samples each worker's CPU use since the previous sample. */
  async sample(): Promise<void> {
    await Promise.all(
      this.alive().map(async (s) => {
        try {
          const ru = await s.worker.getResourceUsage();
          const cpuMs = ru.ru_utime + ru.ru_stime;
          const now = Date.now();
          if (s.lastCpuMs > 0) s.cpu = Math.max(0, (cpuMs - s.lastCpuMs) / Math.max(1, now - s.lastSampleAt));
          s.lastCpuMs = cpuMs;
          s.lastSampleAt = now;
        } catch {
          // A worker that is dying answers nothing; the 'died' handler deals with it.
        }
      }),
    );
  }

  close(): void {
    this.closed = true;
    for (const s of this.slots) s.worker.close();
  }
}
