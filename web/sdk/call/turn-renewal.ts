/**
 * TURN credentials are minted for a bounded time (usernames are `<expiry>:<address>`, the
 * expiry in Unix seconds). A call that outlives them asks for fresh ones
 * (`call.turnCredentials`) and hands them to its live transports before they expire, so a
 * relayed call does not drop at the hour.
 */

/** The earliest expiry (ms since the epoch) among credentials of this form, or null. */
export function credentialExpiry(servers: RTCIceServer[]): number | null {
  let earliest: number | null = null;
  for (const s of servers) {
    const m = /^(\d+):/.exec(s.username ?? '');
    if (!m) continue;
    const ms = Number(m[1]) * 1000;
    if (earliest === null || ms < earliest) earliest = ms;
  }
  return earliest;
}

/** Renew at this share of the remaining lifetime; never sooner than MIN_DELAY_MS. */
const RENEW_AT = 0.8;
const MIN_DELAY_MS = 5_000;
const RETRY_MS = 30_000;

export class TurnRenewal {
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly renew: () => Promise<RTCIceServer[]>,
    private readonly apply: (servers: RTCIceServer[]) => Promise<void>,
    private readonly now: () => number = Date.now,
  ) {}

  /** (Re)arms the timer for these credentials; servers without an expiry need none. */
  schedule(servers: RTCIceServer[]): void {
    this.stop();
    const expiry = credentialExpiry(servers);
    if (expiry === null) return;
    this.arm(Math.max(MIN_DELAY_MS, (expiry - this.now()) * RENEW_AT));
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      this.renew()
        .then(async (servers) => {
          await this.apply(servers);
          this.schedule(servers);
        })
        // The call may have ended or signaling may be down: try again later; a rejoin
        // brings fresh credentials anyway.
        .catch(() => this.arm(RETRY_MS));
    }, delayMs);
  }
}
