/**
 * Sending: one producer per local source (mic, camera, screen) on the current send transport.
 * The tracks outlive the producers: muting pauses the producer (and tells the server), and a
 * rejoin produces the same tracks again on the new transport.
 */
import type { Device, types } from 'mediasoup-client';
import { LocalMedia, videoEncodings, type MediaDevicesLike } from './capture.ts';
import type { CallRequest } from './transports.ts';
import type { CallKind, CallOptions, CallSessionEvents, MediaSource } from './types.ts';

export interface SenderContext {
  callId: string;
  kind: CallKind;
  options: CallOptions;
  request: CallRequest;
  generation(): number;
  device(): Device | null;
  sendTransport(): types.Transport | null;
  emit(e: CallSessionEvents['local-track']): void;
  onError(err: unknown): void;
  devices?: () => MediaDevicesLike;
}

export class Sender {
  readonly local: LocalMedia;
  private readonly producers = new Map<MediaSource, types.Producer>();

  constructor(private readonly ctx: SenderContext) {
    this.local = new LocalMedia(ctx.options, ctx.kind, (e) => ctx.emit(e), ...(ctx.devices ? [ctx.devices] : []));
  }

  /** Produces every captured track on the transport of join `gen`. */
  async produceAll(gen: number): Promise<void> {
    for (const source of ['mic', 'camera', 'screen'] as const) {
      if (this.local.tracks.has(source)) await this.produce(source, gen);
    }
  }

  async setEnabled(source: 'mic' | 'camera', on: boolean): Promise<void> {
    this.local.enabled.set(source, on);
    const track = this.local.tracks.get(source);
    if (track) track.enabled = on;
    const producer = this.producers.get(source);
    this.ctx.emit({ source, track: track ?? null, enabled: on });
    if (!producer) return;
    if (on) producer.resume();
    else producer.pause();
    await this.ctx.request('call.pauseProducer', { callId: this.ctx.callId, producerId: producer.id, paused: !on }).catch(() => undefined);
  }

  async setCameraEnabled(on: boolean): Promise<void> {
    if (on && !this.local.tracks.has('camera')) {
      // An audio call (or a failed camera) can turn the camera on later.
      const track = await this.local.capture('camera');
      if (!track) return;
      this.local.enabled.set('camera', true);
      await this.produce('camera', this.ctx.generation()).catch((e: unknown) => this.ctx.onError(e));
      this.ctx.emit({ source: 'camera', track, enabled: true });
      return;
    }
    await this.setEnabled('camera', on);
  }

  async startScreenShare(): Promise<void> {
    if (this.local.tracks.has('screen')) return;
    const track = await this.local.captureScreen();
    if (!track) return;
    track.addEventListener('ended', () => void this.stopScreenShare());
    this.local.tracks.set('screen', track);
    this.local.enabled.set('screen', true);
    this.ctx.emit({ source: 'screen', track, enabled: true });
    await this.produce('screen', this.ctx.generation()).catch((e: unknown) => this.ctx.onError(e));
  }

  async stopScreenShare(): Promise<void> {
    const track = this.local.tracks.get('screen');
    if (!track) return;
    this.local.tracks.delete('screen');
    this.local.enabled.delete('screen');
    track.stop();
    const producer = this.producers.get('screen');
    this.producers.delete('screen');
    if (producer) {
      producer.close();
      await this.ctx.request('call.closeProducer', { callId: this.ctx.callId, producerId: producer.id }).catch(() => undefined);
    }
    this.ctx.emit({ source: 'screen', track: null, enabled: false });
  }

  /** The transport is about to close; the tracks stay for the next join. */
  closeProducers(): void {
    for (const p of this.producers.values()) p.close();
    this.producers.clear();
  }

  private async produce(source: MediaSource, gen: number): Promise<void> {
    const track = this.local.tracks.get(source);
    const t = this.ctx.sendTransport();
    if (!track || !t || t.closed || this.producers.has(source) || !this.ctx.device()?.canProduce(track.kind as CallKind)) return;
    const enabled = this.local.enabled.get(source) ?? true;
    const video = track.kind === 'video';
    const producer = await t.produce({
      track,
      // We own the tracks: a rejoin produces the same tracks on new transports.
      stopTracks: false,
      zeroRtpOnPause: true,
      ...(video ? { encodings: videoEncodings(this.ctx.options, source, track), codecOptions: { videoGoogleStartBitrate: 300 } } : {}),
      appData: { source, paused: !enabled },
    });
    if (gen !== this.ctx.generation()) {
      producer.close();
      return;
    }
    if (!enabled) producer.pause();
    this.producers.set(source, producer);
  }
}
