/**
 * Commands signaling nodes send to SFU nodes (over Redis, or in-process in embedded mode).
 * `peerId` and `address` are always set by the signaling node from the authenticated
 * connection, never taken from a client.
 */
import type { types as ms } from 'mediasoup';

export type MediaSource = 'mic' | 'camera' | 'screen';

export interface TransportInfo {
  id: string;
  iceParameters: ms.IceParameters;
  iceCandidates: ms.IceCandidate[];
  dtlsParameters: ms.DtlsParameters;
}

export interface ProducerInfo {
  callId: string;
  producerId: string;
  peerId: string;
  address: string;
  kind: 'audio' | 'video';
  source: MediaSource;
  paused: boolean;
}

export interface ConsumerInfo {
  id: string;
  producerId: string;
  kind: 'audio' | 'video';
  rtpParameters: ms.RtpParameters;
  type: string;
  producerPaused: boolean;
}

interface Scoped {
  callId: string;
  peerId: string;
}

export interface SfuCommands {
  /** `origin` is the signaling node that serves this peer: media events for it go there. */
  join: { params: Scoped & { address: string; worker: number; origin: string }; result: { rtpCapabilities: ms.RtpCapabilities; producers: ProducerInfo[]; worker: number } };
  leave: { params: Scoped; result: { remaining: number } };
  createTransport: { params: Scoped & { direction: 'send' | 'recv' }; result: TransportInfo };
  connectTransport: { params: Scoped & { transportId: string; dtlsParameters: ms.DtlsParameters }; result: Record<string, never> };
  restartIce: { params: Scoped & { transportId: string }; result: { iceParameters: ms.IceParameters } };
  produce: {
    params: Scoped & { transportId: string; kind: 'audio' | 'video'; rtpParameters: ms.RtpParameters; source: MediaSource; paused: boolean };
    result: { producerId: string };
  };
  pauseProducer: { params: Scoped & { producerId: string; paused: boolean }; result: Record<string, never> };
  closeProducer: { params: Scoped & { producerId: string }; result: Record<string, never> };
  consume: { params: Scoped & { transportId: string; producerId: string; rtpCapabilities: ms.RtpCapabilities }; result: ConsumerInfo };
  resumeConsumer: { params: Scoped & { consumerId: string }; result: Record<string, never> };
  setPreferredLayers: { params: Scoped & { consumerId: string; spatialLayer: number; temporalLayer?: number }; result: Record<string, never> };
  closeCall: { params: { callId: string }; result: Record<string, never> };
  callStats: { params: { callId: string }; result: { workers: number[]; peers: number; producers: number; consumers: number } };
}

export type SfuMethod = keyof SfuCommands;
export type SfuParams<M extends SfuMethod> = SfuCommands[M]['params'];
export type SfuResult<M extends SfuMethod> = SfuCommands[M]['result'];

/** Error codes an SFU answers with (mapped onto the client error catalogue by signaling). */
export type SfuErrorCode =
  | 'UNAVAILABLE'
  | 'CALL_NOT_FOUND'
  | 'PEER_NOT_FOUND'
  | 'NOT_FOUND'
  | 'FORBIDDEN'
  | 'CANNOT_CONSUME'
  | 'BAD_REQUEST'
  | 'DRAINING'
  /** A per-call or per-participant media limit (participants, devices, transports, one producer per source). */
  | 'LIMIT'
  /** A second consumer of the same producer by the same peer. */
  | 'DUPLICATE'
  /** Another device of the same participant joined and took over the media session. */
  | 'REPLACED'
  | 'INTERNAL';

export interface SfuRequestFrame {
  id: string;
  /** Channel (or node) the reply goes to. */
  replyTo: string;
  method: SfuMethod;
  params: unknown;
}
export type SfuReplyFrame = { id: string; ok: true; data: unknown } | { id: string; ok: false; code: SfuErrorCode; message: string };
/** On a signaling node's reply channel: either the answer to a request or a media event. */
export type SfuToSignalingFrame = SfuReplyFrame | ({ id?: undefined } & MediaEventFrame);

/**
 * What the media tier reports about a call, in its own shape: the signaling call service
 * turns these into client events. The SFU never writes the client wire format.
 */
export type MediaEvent =
  | { type: 'peerJoined'; callId: string; peerId: string; address: string }
  | { type: 'peerLeft'; callId: string; peerId: string; address: string }
  | { type: 'producerAdded'; producer: ProducerInfo }
  | { type: 'producerClosed'; callId: string; producerId: string; peerId: string }
  | { type: 'producerPaused'; callId: string; producerId: string; peerId: string; paused: boolean }
  | { type: 'activeSpeaker'; callId: string; peerId: string; address: string }
  /** The media session is gone (worker died, node drained): its participants join again. */
  | { type: 'rejoin'; callId: string; reason: string };

/** A media event and the participants (addresses) it is for. */
export interface MediaEventFrame {
  to: string[];
  event: MediaEvent;
}
