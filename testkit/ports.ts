import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

/** A port the kernel just handed out as free (for an HTTP or TURN server under test). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Fixed ports for SFU nodes under test (a WebRtcServer listens on UDP and TCP base..base+n-1).
 * Picked below the kernel's ephemeral range (32768 and up) so no outgoing connection of the
 * suite can be holding one, at random so parallel test files rarely meet, and checked free.
 */
export async function freePortBase(count: number): Promise<number> {
  if (count > 10) throw new Error('at most 10 ports per base');
  for (let attempt = 0; attempt < 100; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 1_200) * 10;
    let free = true;
    for (let port = base; port < base + count && free; port++) free = (await udpFree(port)) && (await tcpFree(port));
    if (free) return base;
  }
  throw new Error('no free range of SFU ports found');
}

export function udpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => resolve(false));
    s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

export function tcpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}
