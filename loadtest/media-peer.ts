/**
 * One call participant as a real WebRTC endpoint (mediasoup-client over werift: ICE, DTLS,
 * SRTP): joins the call's media session on its user's connection, sends synthetic Opus-sized
 * audio (and VP8-shaped video) at a set bitrate, consumes every other participant's tracks
 * and measures each one from the RTP it receives (sequence numbers → loss, timestamps →
 * RFC 3550 jitter, payload bytes → bitrate).
 */
import { performance } from 'node:perf_hooks';
import { Device, MediaStreamTrack, RTCRtpCodecParameters, RtpHeader, RtpPacket, useSdesMid, type types } from 'msc-node';
import type { JoinResult, ProducerEvent } from '../protocol/index.ts';
import type { Conn } from './conn.ts';

type Transport = types.Transport;

/** Receive-side figures of one consumed track. */
export class TrackStats {
  packets = 0;
  bytes = 0;
  firstAt = 0;
  lastAt = 0;
  private baseSeq = -1;
  private maxExt = -1;
  private cycles = 0;
  private lastSeq = -1;
  private jitter = 0;
  private lastTransit: number | null = null;

  constructor(
    readonly producerId: string,
    readonly from: string,
    readonly kind: 'audio' | 'video',
    private readonly clockRate: number,
  ) {}

  onPacket(seq: number, timestamp: number, payloadBytes: number): void {
    const at = performance.now();
    if (this.packets === 0) {
      this.firstAt = at;
      this.baseSeq = seq;
      this.lastSeq = seq;
      this.maxExt = seq;
    } else {
      // A wrap when the sequence jumps back by more than half the space.
      if (seq < this.lastSeq && this.lastSeq - seq > 0x8000) this.cycles += 0x10000;
      const ext = this.cycles + seq;
      if (ext > this.maxExt) this.maxExt = ext;
      this.lastSeq = seq;
    }
    this.packets++;
    this.bytes += payloadBytes;
    this.lastAt = at;
    // RFC 3550 A.8: transit = arrival − RTP time, both in timestamp units.
    const transit = (at / 1000) * this.clockRate - timestamp;
    if (this.lastTransit !== null) {
      let d = Math.abs(transit - this.lastTransit);
      // A timestamp wrap (2^32) is not jitter.
      if (d > 2 ** 31) d = Math.abs(d - 2 ** 32);
      this.jitter += (d - this.jitter) / 16;
    }
    this.lastTransit = transit;
  }

  get expected(): number {
    return this.packets === 0 ? 0 : this.maxExt - this.baseSeq + 1;
  }

  get jitterMs(): number {
    return (this.jitter / this.clockRate) * 1000;
  }

  get seconds(): number {
    return (this.lastAt - this.firstAt) / 1000;
  }
}

export interface SendSettings {
  audioKbps: number;
  video: boolean;
  videoKbps: number;
}

const VIDEO_FPS = 15;
const MAX_PAYLOAD = 1100;

export class MediaPeer {
  device!: Device;
  send!: Transport;
  recv!: Transport;
  join!: JoinResult;
  readonly tracks = new Map<string, TrackStats>();
  /** Called when a consumed track receives its first packet. */
  onFirstPacket: (t: TrackStats) => void = () => undefined;
  private timers: NodeJS.Timeout[] = [];
  private closed = false;
  readonly ownProducers = new Set<string>();
  /** Settles once the transports exist (a call.producer event can come before). */
  private readonly started: Promise<void>;
  private markStarted!: (err?: unknown) => void;

  constructor(
    private readonly conn: Conn,
    readonly callId: string,
    readonly deviceId: string,
  ) {
    this.started = new Promise((resolve, reject) => (this.markStarted = (err) => (err === undefined ? resolve() : reject(err))));
    this.started.catch(() => undefined);
  }

  async start(): Promise<JoinResult> {
    try {
      await this.setUp();
      this.markStarted();
    } catch (err) {
      this.markStarted(err);
      throw err;
    }
    return this.join;
  }

  private async setUp(): Promise<void> {
    this.join = await this.conn.request('call.join', { callId: this.callId, device: this.deviceId });
    this.device = new Device(
      {
        codecs: {
          audio: [new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2 })],
          video: [new RTCRtpCodecParameters({ mimeType: 'video/VP8', clockRate: 90000, rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }, { type: 'ccm', parameter: 'fir' }] })],
        },
        headerExtensions: { audio: [useSdesMid()], video: [useSdesMid()] },
      },
      { handlerName: 'werift' },
    );
    await this.device.load({ routerRtpCapabilities: this.join.rtpCapabilities as unknown as types.RtpCapabilities });
    this.send = await this.transport('send');
    this.recv = await this.transport('recv');
  }

  private async transport(direction: 'send' | 'recv'): Promise<Transport> {
    const info = await this.conn.request('call.createTransport', { callId: this.callId, direction });
    const params = {
      id: info.id,
      iceParameters: info.iceParameters as unknown as types.IceParameters,
      iceCandidates: info.iceCandidates as unknown as types.IceCandidate[],
      dtlsParameters: info.dtlsParameters as unknown as types.DtlsParameters,
      iceServers: this.join.iceServers,
    };
    const t = direction === 'send' ? this.device.createSendTransport(params) : this.device.createRecvTransport(params);
    t.on('connect', ({ dtlsParameters }: { dtlsParameters: types.DtlsParameters }, ok: () => void, fail: (e: Error) => void) => {
      this.conn.request('call.connectTransport', { callId: this.callId, transportId: t.id, dtlsParameters: dtlsParameters as unknown as Record<string, unknown> }).then(() => ok(), fail);
    });
    if (direction === 'send') {
      t.on('produce', ({ kind, rtpParameters }: { kind: 'audio' | 'video'; rtpParameters: types.RtpParameters }, ok: (r: { id: string }) => void, fail: (e: Error) => void) => {
        this.conn
          .request('call.produce', { callId: this.callId, transportId: t.id, kind, rtpParameters: rtpParameters as unknown as Record<string, unknown>, source: kind === 'audio' ? 'mic' : 'camera' })
          .then((r) => ok({ id: r.producerId }), fail);
      });
    }
    return t;
  }

  /** Produces the configured tracks and starts feeding them. */
  async produceAll(s: SendSettings): Promise<void> {
    await this.produce('audio', s.audioKbps);
    if (s.video) await this.produce('video', s.videoKbps);
  }

  private async produce(kind: 'audio' | 'video', kbps: number): Promise<void> {
    const track = new MediaStreamTrack({ kind });
    const producer = await this.send.produce({ track });
    this.ownProducers.add(producer.id);
    let seq = 1;
    const write = (payload: Buffer, ts: number, marker: boolean) => {
      track.writeRtp(new RtpPacket(new RtpHeader({ payloadType: 96, sequenceNumber: seq++ & 0xffff, timestamp: ts >>> 0, marker, ssrc: 0 }), payload));
    };
    // Paced by the clock, not by timer callbacks: a late timer sends what is due (RTP time
    // follows the media clock), so the bitrate holds when the process is busy.
    const paced = (periodMs: number, frame: (n: number) => void) => {
      const t0 = performance.now();
      let sent = 0;
      this.timers.push(
        setInterval(() => {
          const due = Math.floor((performance.now() - t0) / periodMs);
          for (; sent < due; sent++) frame(sent);
        }, periodMs),
      );
    };
    if (kind === 'audio') {
      // One Opus-sized packet every 20 ms.
      const bytes = Math.max(10, Math.round((kbps * 1000) / 8 / 50));
      const payload = Buffer.alloc(bytes, 0xf8);
      paced(20, (n) => write(payload, n * 960, true));
    } else {
      // A VP8 key frame every 1/15 s, split into packets of at most MAX_PAYLOAD bytes.
      const frameBytes = Math.max(20, Math.round((kbps * 1000) / 8 / VIDEO_FPS));
      const parts = Math.ceil(frameBytes / MAX_PAYLOAD);
      const first = vp8Packet(Math.min(frameBytes, MAX_PAYLOAD), true);
      const rest = vp8Packet(MAX_PAYLOAD, false);
      const last = vp8Packet(frameBytes - (parts - 1) * MAX_PAYLOAD, false);
      paced(1000 / VIDEO_FPS, (n) => {
        for (let i = 0; i < parts; i++) write(i === 0 ? first : i === parts - 1 ? last : rest, n * (90000 / VIDEO_FPS), i === parts - 1);
      });
    }
  }

  /** Consumes another participant's producer (once) and measures what arrives. */
  async consume(p: Pick<ProducerEvent, 'producerId' | 'kind' | 'address'>): Promise<void> {
    if (this.tracks.has(p.producerId) || this.ownProducers.has(p.producerId) || this.closed) return;
    const stats = new TrackStats(p.producerId, p.address, p.kind, p.kind === 'audio' ? 48000 : 90000);
    this.tracks.set(p.producerId, stats);
    await this.started;
    const info = await this.conn.request('call.consume', {
      callId: this.callId,
      transportId: this.recv.id,
      producerId: p.producerId,
      rtpCapabilities: this.device.rtpCapabilities as unknown as Record<string, unknown>,
    });
    const consumer = await this.recv.consume({ id: info.id, producerId: info.producerId, kind: info.kind, rtpParameters: info.rtpParameters as unknown as types.RtpParameters });
    (consumer.track as unknown as MediaStreamTrack).onReceiveRtp.subscribe((rtp: RtpPacket) => {
      const firstOne = stats.packets === 0;
      stats.onPacket(rtp.header.sequenceNumber, rtp.header.timestamp, rtp.payload.length);
      if (firstOne) this.onFirstPacket(stats);
    });
    await this.conn.request('call.resumeConsumer', { callId: this.callId, consumerId: info.id });
  }

  stopSending(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }

  close(): void {
    this.closed = true;
    this.stopSending();
    this.send?.close();
    this.recv?.close();
  }
}

/** A VP8 payload: descriptor (S bit on a frame's first packet) and, first, a key-frame header. */
function vp8Packet(size: number, start: boolean): Buffer {
  const b = Buffer.alloc(Math.max(size, 11), 0);
  if (start) {
    b[0] = 0x10; // S=1, partition 0
    b[1] = 0x10; // key frame, version 0, show_frame
    b[4] = 0x9d; // start code
    b[5] = 0x01;
    b[6] = 0x2a;
    b.writeUInt16LE(640, 7);
    b.writeUInt16LE(480, 9);
  }
  return b;
}
