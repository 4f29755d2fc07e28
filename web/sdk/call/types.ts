/**
 * The public shapes of a call (states, options, tracks, events). Types only, so every other
 * call module can share them without importing each other.
 */
import type { CallParticipant } from '../../../protocol/index.ts';

export type CallKind = 'audio' | 'video';
export type MediaSource = 'mic' | 'camera' | 'screen';
export type CallState =
  /** Outgoing: waiting for someone to answer (media is already set up). */
  | 'ringing'
  | 'joining'
  | 'connected'
  /** Media is being set up again (SFU failover, lost signaling, MEDIA_REJOIN). */
  | 'reconnecting'
  | 'ended';

export interface CallOptions {
  /** Capture the microphone (default true). */
  audio?: boolean | MediaTrackConstraints;
  /** Capture the camera (default: true for video calls). */
  video?: boolean | MediaTrackConstraints;
  /** 'relay' sends everything through TURN (the join answer carries the servers). */
  iceTransportPolicy?: RTCIceTransportPolicy;
  /** Upper bound for the camera encoding (its top layer with simulcast), bits per second. */
  maxVideoBitrate?: number;
  /**
   * Send the camera as simulcast layers so receivers (or the app for small tiles) can pick a
   * lower one (default true). Only from 640 px wide: smaller pictures get one layer anyway.
   */
  simulcast?: boolean;
  /** Leave by itself when every other participant has left, declined or missed (default true). */
  autoLeaveWhenAlone?: boolean;
  /**
   * Being alone counts only once someone else has been in the call (set for group calls:
   * members join when they like, so the first one in waits for the others).
   */
  waitForOthers?: boolean;
}

export interface RemoteTrack {
  producerId: string;
  consumerId: string;
  peerId: string;
  address: string;
  kind: CallKind;
  source: MediaSource;
  track: MediaStreamTrack;
  /** The sender muted it (mic) or turned it off (camera). */
  paused: boolean;
  /** Sent as simulcast layers: setPreferredLayers picks which one arrives. */
  simulcast: boolean;
}

export interface InboundStat {
  producerId: string;
  peerId: string;
  address: string;
  kind: CallKind;
  source: MediaSource;
  bytesReceived: number;
  packetsReceived: number;
  framesDecoded: number;
  totalAudioEnergy: number;
  audioLevel: number;
  /** Size of the last decoded video frame (0 for audio or before the first frame). */
  frameWidth: number;
  frameHeight: number;
}

export type TransportDirection = 'send' | 'recv';

export interface CallSessionEvents {
  state: { state: CallState; previous: CallState };
  'track-added': RemoteTrack;
  'track-removed': RemoteTrack;
  'track-paused': RemoteTrack;
  participants: CallParticipant[];
  'active-speaker': { peerId: string; address: string };
  'local-track': { source: MediaSource; track: MediaStreamTrack | null; enabled: boolean };
  /** Transport connection state, for a connection indicator. */
  connection: { direction: TransportDirection; state: RTCPeerConnectionState };
  rejoin: { reason: string };
  ended: { reason: string };
}
