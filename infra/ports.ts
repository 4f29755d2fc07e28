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
