/**
 * Presence checks from sample users: contact rows in PostgreSQL (both ways, sharing
 * presence, as after an exchange of messages), `presence.query` from a watcher, and the
 * `presence.update` events the watchers received.
 */
import pg from 'pg';
import type { PresenceSeen } from '../signaling/ipc.ts';
import type { Loadgen } from '../signaling/procs.ts';

/** Makes every watcher and its contacts share presence with each other. */
export async function addContacts(dbUrl: string, pairs: { watcher: string; contacts: string[] }[]): Promise<void> {
  const c = new pg.Client({ connectionString: dbUrl });
  await c.connect();
  try {
    const owners: string[] = [];
    const peers: string[] = [];
    for (const p of pairs)
      for (const x of p.contacts) {
        owners.push(p.watcher, x);
        peers.push(x, p.watcher);
      }
    await c.query('insert into contacts (owner, peer, shares_presence) select * , true from unnest($1::text[], $2::text[]) on conflict do nothing', [owners, peers]);
  } finally {
    await c.end();
  }
}

/** `presence.query` from a watcher: how many of `addresses` it sees online, offline and unknown. */
export async function queryPresence(lg: Loadgen, watcher: string, addresses: string[]): Promise<{ online: number; offline: number; unknown: number; error: string | null }> {
  const out = { online: 0, offline: 0, unknown: 0, error: null as string | null };
  for (let i = 0; i < addresses.length; i += 500) {
    const r = await lg.call({ cmd: 'request', from: watcher, body: { type: 'presence.query', addresses: addresses.slice(i, i + 500) }, timeoutMs: 10_000 });
    if (!r.ok) {
      out.error = r.error;
      continue;
    }
    for (const s of (r.data as { presence: { online: boolean | null }[] }).presence) {
      if (s.online === true) out.online++;
      else if (s.online === false) out.offline++;
      else out.unknown++;
    }
  }
  return out;
}

/** For each cycled contact: did its watcher see it go offline and then online again? */
export function sawOfflineThenOnline(events: PresenceSeen[], expected: { watcher: string; contact: string }[]) {
  let both = 0;
  const missing: { watcher: string; contact: string; seen: string }[] = [];
  for (const e of expected) {
    const seq = events.filter((x) => x.to === e.watcher && x.address === e.contact).sort((a, b) => a.at - b.at);
    const off = seq.findIndex((x) => x.online === false);
    const on = off >= 0 ? seq.findIndex((x, i) => i > off && x.online === true) : -1;
    if (on >= 0) both++;
    else if (missing.length < 10) missing.push({ ...e, seen: seq.map((x) => String(x.online)).join(',') || 'nothing' });
  }
  return { expected: expected.length, sawOfflineThenOnline: both, ok: both === expected.length, missing };
}
