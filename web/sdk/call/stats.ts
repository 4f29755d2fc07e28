/**
 * Receive statistics as plain numbers: what tests and diagnostics assert on. Pure functions
 * over a stats report, so missing or non-numeric fields count as 0 instead of NaN.
 */
import type { InboundStat, RemoteTrack } from './types.ts';

/** The part of RTCStatsReport read here (a Map of plain objects works too). */
export interface StatsReportLike {
  forEach(cb: (stat: Record<string, unknown>) => void): void;
}

/** Sums the inbound-rtp entries of one consumer's report; sizes and levels take the largest. */
export function inboundStat(remote: RemoteTrack, report: StatsReportLike | null): InboundStat {
  const s: InboundStat = {
    producerId: remote.producerId,
    peerId: remote.peerId,
    address: remote.address,
    kind: remote.kind,
    source: remote.source,
    bytesReceived: 0,
    packetsReceived: 0,
    framesDecoded: 0,
    totalAudioEnergy: 0,
    audioLevel: 0,
    frameWidth: 0,
    frameHeight: 0,
  };
  report?.forEach((r) => {
    if (r.type !== 'inbound-rtp') return;
    s.bytesReceived += num(r.bytesReceived);
    s.packetsReceived += num(r.packetsReceived);
    s.framesDecoded += num(r.framesDecoded);
    s.totalAudioEnergy += num(r.totalAudioEnergy);
    s.audioLevel = Math.max(s.audioLevel, num(r.audioLevel));
    s.frameWidth = Math.max(s.frameWidth, num(r.frameWidth));
    s.frameHeight = Math.max(s.frameHeight, num(r.frameHeight));
  });
  return s;
}

/** Copies each entry into a plain object (serialisable across page.evaluate). */
export function statsToJson(report: StatsReportLike | null): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  report?.forEach((r) => out.push({ ...r }));
  return out;
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}
