import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

/**
 * A listener could not bind because something else holds its port. Start-up turns it into
 * one line naming the port and the variable that chooses it, instead of a stack trace.
 */
export class PortInUseError extends Error {
  constructor(
    readonly port: number,
    /** The configuration variable to change. */
    readonly variable: string,
    /** What wanted the port, e.g. "HTTP", "metrics", "SFU worker 0 (UDP)". */
    readonly what: string,
  ) {
    super(`${what} port ${port} is already in use (another BlockRTC or another program?); set ${variable} to a free port`);
    this.name = 'PortInUseError';
  }
}

/** Node's EADDRINUSE error from `listen` (it carries the port). */
export function isAddressInUse(err: unknown): err is NodeJS.ErrnoException & { port?: number } {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'EADDRINUSE';
}

/** A port start-up needs, and the variable that chooses it. */
export interface WantedPort {
  what: string;
  variable: string;
  host: string;
  port: number;
  protocol: 'tcp' | 'udp';
}

/**
 * The wanted ports something else already holds, found by binding each for a moment before
 * anything starts: a second instance on the same machine hears about every variable to change
 * at once, not one per attempt. (Binding later can still fail; that error names its port too.)
 */
export async function takenPorts(wanted: WantedPort[]): Promise<WantedPort[]> {
  const taken: WantedPort[] = [];
  for (const w of wanted) {
    if (w.port === 0) continue;
    if (!(await canBind(w))) taken.push(w);
  }
  return taken;
}

async function canBind({ host, port, protocol }: WantedPort): Promise<boolean> {
  return new Promise((resolve) => {
    if (protocol === 'tcp') {
      const s = createServer();
      s.once('error', (err) => resolve(!isAddressInUse(err)));
      s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(true)));
    } else {
      const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
      s.once('error', (err) => {
        try {
          s.close();
        } catch {
          // never bound: nothing to close
        }
        resolve(!isAddressInUse(err));
      });
      s.bind({ address: host, port, exclusive: true }, () => s.close(() => resolve(true)));
    }
  });
}
