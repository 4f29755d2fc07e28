import { createSocket } from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../infra/logger.ts';
import { PortInUseError } from '../infra/ports.ts';
import { loadConfig } from '../config/config.ts';
import { freePortBase } from '../testkit/ports.ts';
import { WorkerPool } from './worker-pool.ts';

describe('WorkerPool', () => {
  it('reports a worker port held by another process as PortInUseError naming SFU_PORT_BASE', async () => {
    const base = await freePortBase(2);
    const held = createSocket('udp4');
    await new Promise<void>((r) => held.bind(base + 1, '127.0.0.1', () => r()));
    const log = createLogger(loadConfig('sfu', { REDIS_URL: 'redis://127.0.0.1:6379', LOG_LEVEL: 'silent' }));
    try {
      const err = await WorkerPool.create({ workers: 2, listenIp: '127.0.0.1', announcedAddress: null, portBase: base, logLevel: 'none' }, log).then(
        (pool) => (pool.close(), null),
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(PortInUseError);
      expect(err).toMatchObject({ port: base + 1, variable: 'SFU_PORT_BASE' });
      expect((err as Error).message).toContain(`SFU worker 1 (UDP) port ${base + 1}`);
    } finally {
      held.close();
    }
  });
});
