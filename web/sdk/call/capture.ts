/**
 * Local media: the tracks this tab captures and whether each is switched on. The session owns
 * them (a rejoin sends the same tracks again on new transports); a device that is missing or
 * refused leaves that kind receive-only instead of failing the call.
 */
import { BlockRtcClientError } from '../errors.ts';
import type { CallKind, CallOptions, CallSessionEvents, MediaSource } from './types.ts';

/** The part of navigator.mediaDevices used here; injectable for tests and other runtimes. */
export interface MediaDevicesLike {
  getUserMedia(constraints: MediaStreamConstraints): Promise<MediaStream>;
  getDisplayMedia(options: DisplayMediaStreamOptions): Promise<MediaStream>;
}

const DEFAULT_AUDIO: MediaTrackConstraints = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
const DEFAULT_VIDEO: MediaTrackConstraints = { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 24, max: 30 } };

export class LocalMedia {
  readonly tracks = new Map<MediaSource, MediaStreamTrack>();
  readonly enabled = new Map<MediaSource, boolean>([
    ['mic', true],
    ['camera', true],
  ]);

  constructor(
    private readonly options: CallOptions,
    private readonly kind: CallKind,
    private readonly onTrack: (e: CallSessionEvents['local-track']) => void,
    // Read lazily: navigator does not exist outside browsers.
    private readonly devices: () => MediaDevicesLike = () => navigator.mediaDevices,
  ) {}

  /** What the options ask for, once: the mic unless audio is false, the camera for video calls. */
  async captureInitial(): Promise<void> {
    const wantAudio = this.options.audio !== false;
    const wantVideo = this.options.video !== undefined ? this.options.video !== false : this.kind === 'video';
    if (wantAudio && !this.tracks.has('mic')) await this.capture('mic');
    if (wantVideo && !this.tracks.has('camera')) await this.capture('camera');
    else if (!wantVideo) this.enabled.set('camera', false);
  }

  /** The track, or null (and the source switched off) when the device is missing or refused. */
  async capture(source: 'mic' | 'camera'): Promise<MediaStreamTrack | null> {
    const constraints: MediaStreamConstraints =
      source === 'mic'
        ? { audio: typeof this.options.audio === 'object' ? this.options.audio : DEFAULT_AUDIO }
        : { video: typeof this.options.video === 'object' ? this.options.video : DEFAULT_VIDEO };
    try {
      const stream = await this.devices().getUserMedia(constraints);
      const track = source === 'mic' ? stream.getAudioTracks()[0] : stream.getVideoTracks()[0];
      if (!track) return null;
      this.tracks.set(source, track);
      this.onTrack({ source, track, enabled: this.enabled.get(source) ?? true });
      return track;
    } catch (err) {
      // No device or permission refused: the call goes on receive-only for this kind.
      console.warn(`blockrtc: ${source} unavailable`, err);
      this.enabled.set(source, false);
      return null;
    }
  }

  /** A screen capture track; unlike the camera, a refusal is the user's answer and is reported. */
  async captureScreen(): Promise<MediaStreamTrack | null> {
    let stream: MediaStream;
    try {
      stream = await this.devices().getDisplayMedia({ video: { frameRate: { max: 10 } }, audio: false });
    } catch (err) {
      throw new BlockRtcClientError('MEDIA_DEVICE_ERROR', `Screen capture refused: ${(err as Error).message}`);
    }
    return stream.getVideoTracks()[0] ?? null;
  }

  stopAll(): void {
    for (const t of this.tracks.values()) t.stop();
    this.tracks.clear();
  }
}

/** Camera: two or three simulcast layers (quarter, half, full size) when big enough; otherwise one. */
export function videoEncodings(options: CallOptions, source: MediaSource, track: Pick<MediaStreamTrack, 'getSettings'>): RTCRtpEncodingParameters[] {
  if (source === 'screen') return [{ maxBitrate: 1_000_000 }];
  const top = options.maxVideoBitrate ?? 600_000;
  const width = track.getSettings().width ?? 0;
  if (options.simulcast === false || width < 640) return [{ maxBitrate: top }];
  const scales = width >= 1280 ? [4, 2, 1] : [2, 1];
  return scales.map((scale) => ({ scaleResolutionDownBy: scale, maxBitrate: Math.round(top / (scale * scale)) }));
}
