import { describe, expect, it } from 'vitest';
import { inboundStat, statsToJson } from './stats.ts';
import type { RemoteTrack } from './types.ts';

const remote = { producerId: 'p1', consumerId: 'c1', peerId: 'peer', address: '0xA', kind: 'video', source: 'camera', paused: false, simulcast: true } as Omit<RemoteTrack, 'track'> as RemoteTrack;

function report(...stats: Record<string, unknown>[]): Map<string, Record<string, unknown>> {
  return new Map(stats.map((s, i) => [`s${i}`, s]));
}

describe('inboundStat', () => {
  it('sums the inbound-rtp entries and ignores the others', () => {
    const s = inboundStat(
      remote,
      report(
        { type: 'inbound-rtp', bytesReceived: 100, packetsReceived: 3, framesDecoded: 2, frameWidth: 320, frameHeight: 180 },
        { type: 'inbound-rtp', bytesReceived: 50, packetsReceived: 1, framesDecoded: 1, frameWidth: 640, frameHeight: 360 },
        { type: 'transport', bytesReceived: 999_999 },
        { type: 'candidate-pair', packetsReceived: 42 },
      ),
    );
    expect(s).toEqual({
      producerId: 'p1',
      peerId: 'peer',
      address: '0xA',
      kind: 'video',
      source: 'camera',
      bytesReceived: 150,
      packetsReceived: 4,
      framesDecoded: 3,
      totalAudioEnergy: 0,
      audioLevel: 0,
      frameWidth: 640,
      frameHeight: 360,
    });
  });

  it('keeps the loudest level and adds up the audio energy', () => {
    const s = inboundStat(remote, report({ type: 'inbound-rtp', audioLevel: 0.2, totalAudioEnergy: 1.5 }, { type: 'inbound-rtp', audioLevel: 0.7, totalAudioEnergy: 0.5 }));
    expect(s.audioLevel).toBe(0.7);
    expect(s.totalAudioEnergy).toBe(2);
  });

  it('counts missing, non-numeric and non-finite fields as 0', () => {
    const s = inboundStat(remote, report({ type: 'inbound-rtp', bytesReceived: '12', packetsReceived: Number.NaN, framesDecoded: Number.POSITIVE_INFINITY, audioLevel: null }));
    expect([s.bytesReceived, s.packetsReceived, s.framesDecoded, s.audioLevel]).toEqual([0, 0, 0, 0]);
  });

  it('gives zeros without a report (getStats failed)', () => {
    expect(inboundStat(remote, null)).toMatchObject({ producerId: 'p1', bytesReceived: 0, frameWidth: 0 });
  });
});

describe('statsToJson', () => {
  it('copies every entry into a plain object', () => {
    const entry = { type: 'candidate-pair', state: 'succeeded' };
    const out = statsToJson(report(entry, { type: 'transport' }));
    expect(out).toEqual([entry, { type: 'transport' }]);
    expect(out[0]).not.toBe(entry);
    expect(statsToJson(null)).toEqual([]);
  });
});
