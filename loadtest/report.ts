/**
 * The end of a run: the JSON report (what the operator and CI check) and a short human
 * summary of it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { LoadtestOptions } from './args.ts';
import type { Totals } from './aggregate.ts';
import type { SubscriberStats } from './ipc.ts';

export interface PhaseTimes {
  startedAt: number;
  signInMs: number;
  connectStartedAt: number;
  connectEndedAt: number;
  mixStartedAt: number;
  mixEndedAt: number;
  endedAt: number;
}

export function buildReport(o: LoadtestOptions, t: Totals, subscribers: SubscriberStats[], p: PhaseTimes, stoppedEarly: boolean) {
  const c = t.counters;
  const byCode: Record<string, number> = {};
  for (const [k, n] of Object.entries(t.errors)) {
    const code = k.slice(k.indexOf(':') + 1);
    byCode[code] = (byCode[code] ?? 0) + n;
  }
  const connectSec = Math.max(0.001, (p.connectEndedAt - p.connectStartedAt) / 1000);
  const mixSec = Math.max(0.001, (p.mixEndedAt - p.mixStartedAt) / 1000);
  const losses = subscribers.map((s) => s.lossPct);
  const round = (v: number) => Math.round(v * 100) / 100;
  const mean = (xs: number[]) => (xs.length ? round(xs.reduce((a, b) => a + b, 0) / xs.length) : null);
  return {
    version: 1,
    tool: 'blockrtc loadtest',
    targets: o.urls,
    startedAt: new Date(p.startedAt).toISOString(),
    endedAt: new Date(p.endedAt).toISOString(),
    stoppedEarly,
    parameters: {
      users: o.users,
      workers: o.workers,
      sourceAddresses: o.sourceAddresses,
      connectRate: o.connectRate,
      rampSec: o.rampSec,
      durationSec: o.durationSec,
      msgsPerMin: o.msgsPerMin,
      typingPerMin: o.typingPerMin,
      readsPerMin: o.readsPerMin,
      churnPerMin: o.churnPerMin,
      calls: o.calls,
      participants: o.participants,
      video: o.video,
      audioKbps: o.audioKbps,
      videoKbps: o.videoKbps,
      textBytes: o.textBytes,
    },
    signIn: { fresh: c.signInFresh, cached: c.signInCached, failed: c.signInFailed, latencyMs: t.hists.signInMs.summary(), seconds: round(p.signInMs / 1000) },
    connect: {
      attempted: c.connectAttempted,
      connected: c.connected,
      failed: c.connectFailed,
      perSecond: round(c.connected / connectSec),
      seconds: round(connectSec),
      latencyMs: t.hists.connectMs.summary(),
      dropped: c.dropped,
      tokensRefreshed: c.tokensRefreshed,
    },
    chat: {
      sent: c.chatSent,
      acked: c.chatAcked,
      failed: c.chatFailed,
      unanswered: c.chatSent - c.chatAcked - c.chatFailed,
      delivered: c.chatDelivered,
      deliveredLive: c.chatDeliveredLive,
      deliveredBySync: c.chatDeliveredBySync,
      duplicates: c.chatDuplicates,
      deliveredPerSecond: round(c.chatDelivered / mixSec),
      mixSeconds: round(mixSec),
      deliveryMs: t.hists.deliveryMs.summary(),
      ackMs: t.hists.ackMs.summary(),
    },
    receipts: {
      deliveredSent: c.receiptDeliveredSent,
      readSent: c.receiptReadSent,
      acked: c.receiptAcked,
      failed: c.receiptFailed,
      interruptedByChurn: c.receiptInterrupted,
      deliveredIdsReported: c.receiptDeliveredIdsReceived,
      readEventsReceived: c.receiptReadEventsReceived,
    },
    typing: { sent: c.typingSent, received: c.typingReceived },
    presence: { disconnects: c.churnDisconnects, reconnects: c.churnReconnects, reconnectFailed: c.churnReconnectFailed },
    calls: {
      planned: c.callsPlanned,
      up: c.callsUp,
      failed: c.callsFailed,
      participantsLeft: c.participantsLeft,
      setupMs: t.hists.callSetupMs.summary(),
      firstMediaMs: t.hists.firstMediaMs.summary(),
      subscriberTracks: subscribers.length,
      lossPct: { mean: mean(losses), max: losses.length ? Math.max(...losses) : null },
      jitterMs: { mean: mean(subscribers.map((s) => s.jitterMs)), max: subscribers.length ? Math.max(...subscribers.map((s) => s.jitterMs)) : null },
      kbps: { mean: mean(subscribers.map((s) => s.kbps)) },
      subscribers,
    },
    errors: { total: Object.values(byCode).reduce((a, b) => a + b, 0), byCode, byOperation: t.errors },
  };
}

export type Report = ReturnType<typeof buildReport>;

export function writeReport(path: string, r: Report): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(r, null, 2)}\n`);
}

export function summary(r: Report): string {
  const ms = (p: { p50: number | null; p99: number | null; max: number | null }) => (p.p50 === null ? '-' : `p50 ${p.p50} ms, p99 ${p.p99} ms, max ${p.max} ms`);
  const lines = [
    `blockrtc loadtest: ${r.parameters.users} users over ${r.parameters.workers} worker(s) against ${r.targets.join(', ')}${r.stoppedEarly ? ' (stopped early)' : ''}`,
    `  sign-in   ${r.signIn.fresh} fresh, ${r.signIn.cached} cached, ${r.signIn.failed} failed (${ms(r.signIn.latencyMs)})`,
    `  connect   ${r.connect.connected}/${r.connect.attempted} in ${r.connect.seconds} s = ${r.connect.perSecond}/s (${ms(r.connect.latencyMs)}); ${r.connect.dropped} dropped`,
    `  chat      sent ${r.chat.sent}, acked ${r.chat.acked}, failed ${r.chat.failed}, delivered ${r.chat.delivered} (${r.chat.deliveredBySync} by sync) = ${r.chat.deliveredPerSecond}/s`,
    `            delivery ${ms(r.chat.deliveryMs)}; ack ${ms(r.chat.ackMs)}`,
    `  receipts  delivered ${r.receipts.deliveredSent} sent / ${r.receipts.deliveredIdsReported} ids reported back, read ${r.receipts.readSent} sent / ${r.receipts.readEventsReceived} reported`,
    `  typing    ${r.typing.sent} sent, ${r.typing.received} received; presence ${r.presence.disconnects} disconnects, ${r.presence.reconnects} reconnects`,
    `  calls     ${r.calls.up}/${r.calls.planned} up, ${r.calls.failed} failed; setup ${ms(r.calls.setupMs)}`,
    `            ${r.calls.subscriberTracks} received tracks: loss mean ${r.calls.lossPct.mean ?? '-'} % max ${r.calls.lossPct.max ?? '-'} %, jitter mean ${r.calls.jitterMs.mean ?? '-'} ms, ${r.calls.kbps.mean ?? '-'} kbit/s`,
    `  errors    ${r.errors.total}${r.errors.total ? ` ${JSON.stringify(r.errors.byCode)}` : ''}`,
  ];
  return lines.join('\n');
}
