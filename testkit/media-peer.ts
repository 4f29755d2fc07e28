import { randomUUID } from 'node:crypto';
import { Device, MediaStreamTrack, RTCRtpCodecParameters, RtpHeader, RtpPacket, useSdesMid, type types } from 'msc-node';
import type { JoinResult, ProducerEvent } from '../protocol/index.ts';
import type { TestClient } from './client.ts';

type Transport = types.Transport;

/**
 * A real WebRTC participant in Node (mediasoup-client over werift): ICE, DTLS and SRTP with
 * the SFU, sending synthetic Opus and VP8 RTP and counting what it receives.
 */
export class MediaPeer {
  device!: Device;
  send!: Transport;
  recv!: Transport;
  join!: JoinResult;
  readonly received = new Map<string, { kind: string; packets: number; bytes: number }>();
  private timers: NodeJS.Timeout[] = [];
  readonly deviceId = `d${randomUUID().slice(0, 8)}`;

  constructor(
    readonly client: TestClient,
    readonly callId: string,
    readonly options: { iceTransportPolicy?: 'all' | 'relay' } = {},
  ) {}

  async start(): Promise<JoinResult> {
    this.join = await this.client.request('call.join', { callId: this.callId, device: this.deviceId });
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
    return this.join;
  }

  private async transport(direction: 'send' | 'recv'): Promise<Transport> {
    const info = await this.client.request('call.createTransport', { callId: this.callId, direction });
    const params = {
      id: info.id,
      iceParameters: info.iceParameters as unknown as types.IceParameters,
      iceCandidates: info.iceCandidates as unknown as types.IceCandidate[],
      dtlsParameters: info.dtlsParameters as unknown as types.DtlsParameters,
      iceServers: this.join.iceServers,
      ...(this.options.iceTransportPolicy ? { iceTransportPolicy: this.options.iceTransportPolicy } : {}),
    };
    const t = direction === 'send' ? this.device.createSendTransport(params) : this.device.createRecvTransport(params);
    t.on('connect', ({ dtlsParameters }: { dtlsParameters: types.DtlsParameters }, cb: () => void, eb: (e: Error) => void) => {
      this.client.request('call.connectTransport', { callId: this.callId, transportId: t.id, dtlsParameters: dtlsParameters as unknown as Record<string, unknown> }).then(() => cb(), eb);
    });
    if (direction === 'send') {
      t.on('produce', ({ kind, rtpParameters, appData }: { kind: 'audio' | 'video'; rtpParameters: types.RtpParameters; appData: Record<string, unknown> }, cb: (r: { id: string }) => void, eb: (e: Error) => void) => {
        this.client
          .request('call.produce', { callId: this.callId, transportId: t.id, kind, rtpParameters: rtpParameters as unknown as Record<string, unknown>, source: (appData.source as 'mic' | 'camera' | 'screen') ?? (kind === 'audio' ? 'mic' : 'camera') })
          .then((r) => cb({ id: r.producerId }), eb);
      });
    }
    return t;
  }

  /** Produces a track and feeds it synthetic RTP: Opus frames every 20 ms, VP8 key frames at 10 fps. */
  async produce(kind: 'audio' | 'video'): Promise<types.Producer> {
    const track = new MediaStreamTrack({ kind });
    const producer = await this.send.produce({ track, appData: { source: kind === 'audio' ? 'mic' : 'camera' } });
    let seq = 1;
    let ts = 0;
    const every = kind === 'audio' ? 20 : 100;
    const timer = setInterval(() => {
      const payload = kind === 'audio' ? Buffer.alloc(60, 0xf8) : vp8KeyFrame();
      const header = new RtpHeader({ payloadType: 96, sequenceNumber: seq++ & 0xffff, timestamp: (ts += kind === 'audio' ? 960 : 9000) >>> 0, marker: true, ssrc: 0 });
      track.writeRtp(new RtpPacket(header, payload));
    }, every);
    this.timers.push(timer);
    return producer;
  }

  /** Consumes a producer and counts the RTP that arrives for it. */
  async consume(p: Pick<ProducerEvent, 'producerId' | 'kind'>): Promise<types.Consumer> {
    const info = await this.client.request('call.consume', {
      callId: this.callId,
      transportId: this.recv.id,
      producerId: p.producerId,
      rtpCapabilities: this.device.rtpCapabilities as unknown as Record<string, unknown>,
    });
    const consumer = await this.recv.consume({ id: info.id, producerId: info.producerId, kind: info.kind, rtpParameters: info.rtpParameters as unknown as types.RtpParameters });
    const stats = { kind: info.kind, packets: 0, bytes: 0 };
    this.received.set(info.producerId, stats);
    (consumer.track as unknown as MediaStreamTrack).onReceiveRtp.subscribe((rtp: RtpPacket) => {
      stats.packets++;
      stats.bytes += rtp.payload.length;
    });
    await this.client.request('call.resumeConsumer', { callId: this.callId, consumerId: info.id });
    return consumer;
  }

  packetsFrom(producerId: string): number {
    return this.received.get(producerId)?.packets ?? 0;
  }

  close(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.send?.close();
    this.recv?.close();
  }
}

/** A minimal VP8 key frame: payload descriptor (S=1) and an intra-frame header 640×480. */
function vp8KeyFrame(): Buffer {
  const b = Buffer.alloc(200, 0);
  b[0] = 0x10; // S bit, partition 0
  b[1] = 0x10; // frame tag: key frame (P=0), version 0, show_frame=1
  b[2] = 0x00;
  b[3] = 0x00;
  b[4] = 0x9d; // start code
  b[5] = 0x01;
  b[6] = 0x2a;
  b.writeUInt16LE(640, 7);
  b.writeUInt16LE(480, 9);
  return b;
}

export async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
