import { afterEach, describe, expect, it, vi } from 'vitest';
import { LocalMedia, videoEncodings, type MediaDevicesLike } from './capture.ts';
import type { CallSessionEvents } from './types.ts';

/** Just enough of MediaStreamTrack / MediaStream for capture. */
function fakeTrack(kind: 'audio' | 'video') {
  return { kind, enabled: true, stop: vi.fn(), getSettings: () => ({}) } as unknown as MediaStreamTrack;
}
function fakeStream(tracks: MediaStreamTrack[]): MediaStream {
  return { getAudioTracks: () => tracks.filter((t) => t.kind === 'audio'), getVideoTracks: () => tracks.filter((t) => t.kind === 'video') } as unknown as MediaStream;
}

function devices(
  userMedia: MediaDevicesLike['getUserMedia'] = async (c) => fakeStream([fakeTrack(c.audio ? 'audio' : 'video')]),
  displayMedia: MediaDevicesLike['getDisplayMedia'] = async () => fakeStream([fakeTrack('video')]),
) {
  return { getUserMedia: vi.fn(userMedia), getDisplayMedia: vi.fn(displayMedia) };
}

afterEach(() => vi.restoreAllMocks());

describe('LocalMedia', () => {
  it('captures mic and camera for a video call and reports each track', async () => {
    const d = devices();
    const events: CallSessionEvents['local-track'][] = [];
    const media = new LocalMedia({}, 'video', (e) => events.push(e), () => d);
    await media.captureInitial();
    expect(d.getUserMedia).toHaveBeenCalledTimes(2);
    expect(events.map((e) => [e.source, e.enabled])).toEqual([
      ['mic', true],
      ['camera', true],
    ]);
    expect([...media.tracks.keys()]).toEqual(['mic', 'camera']);
  });

  it('does not open the camera for an audio call, and marks it off', async () => {
    const d = devices();
    const media = new LocalMedia({}, 'audio', () => undefined, () => d);
    await media.captureInitial();
    expect(d.getUserMedia).toHaveBeenCalledTimes(1);
    expect(d.getUserMedia.mock.calls[0]![0]).toHaveProperty('audio');
    expect(media.enabled.get('camera')).toBe(false);
  });

  it('uses the constraints given in the options', async () => {
    const d = devices();
    const media = new LocalMedia({ audio: { deviceId: 'mic-2' }, video: { width: 1280 } }, 'video', () => undefined, () => d);
    await media.captureInitial();
    expect(d.getUserMedia.mock.calls.map((c) => c[0])).toEqual([{ audio: { deviceId: 'mic-2' } }, { video: { width: 1280 } }]);
  });

  it('goes on receive-only when a device is refused', async () => {
    vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const d = devices(async () => Promise.reject(new Error('NotAllowedError')));
    const onTrack = vi.fn();
    const media = new LocalMedia({}, 'video', onTrack, () => d);
    await expect(media.capture('mic')).resolves.toBeNull();
    expect(media.enabled.get('mic')).toBe(false);
    expect(media.tracks.size).toBe(0);
    expect(onTrack).not.toHaveBeenCalled();
  });

  it('reports a refused screen capture as MEDIA_DEVICE_ERROR', async () => {
    const d = devices(undefined, async () => Promise.reject(new Error('denied')));
    const media = new LocalMedia({}, 'video', () => undefined, () => d);
    await expect(media.captureScreen()).rejects.toMatchObject({ code: 'MEDIA_DEVICE_ERROR', message: 'Screen capture refused: denied' });
  });

  it('stopAll stops and forgets every track', async () => {
    const media = new LocalMedia({}, 'video', () => undefined, () => devices());
    await media.captureInitial();
    const tracks = [...media.tracks.values()];
    media.stopAll();
    for (const t of tracks) expect(t.stop).toHaveBeenCalled();
    expect(media.tracks.size).toBe(0);
  });
});

describe('videoEncodings', () => {
  const track = (width?: number) => ({ getSettings: () => (width === undefined ? {} : { width }) });

  it('sends small pictures as one layer at the top bitrate', () => {
    expect(videoEncodings({}, 'camera', track(320))).toEqual([{ maxBitrate: 600_000 }]);
    expect(videoEncodings({}, 'camera', track())).toEqual([{ maxBitrate: 600_000 }]);
  });

  it('uses two layers from 640 px and three from 1280 px, each a quarter of the bitrate of the next', () => {
    expect(videoEncodings({}, 'camera', track(640))).toEqual([
      { scaleResolutionDownBy: 2, maxBitrate: 150_000 },
      { scaleResolutionDownBy: 1, maxBitrate: 600_000 },
    ]);
    expect(videoEncodings({ maxVideoBitrate: 1_600_000 }, 'camera', track(1280))).toEqual([
      { scaleResolutionDownBy: 4, maxBitrate: 100_000 },
      { scaleResolutionDownBy: 2, maxBitrate: 400_000 },
      { scaleResolutionDownBy: 1, maxBitrate: 1_600_000 },
    ]);
  });

  it('sends one layer when simulcast is off, and a fixed one for the screen', () => {
    expect(videoEncodings({ simulcast: false, maxVideoBitrate: 900_000 }, 'camera', track(1920))).toEqual([{ maxBitrate: 900_000 }]);
    expect(videoEncodings({}, 'screen', track(1920))).toEqual([{ maxBitrate: 1_000_000 }]);
  });
});
