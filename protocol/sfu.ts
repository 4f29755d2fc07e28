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
  join: { params: Scoped & { address: string; worker: number }; result: { rtpCapabilities: ms.RtpCapabilities; producers: ProducerInfo[]; worker: number } };
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
export type SfuErrorCode = 'UNAVAILABLE' | 'CALL_NOT_FOUND' | 'PEER_NOT_FOUND' | 'NOT_FOUND' | 'FORBIDDEN' | 'CANNOT_CONSUME' | 'BAD_REQUEST' | 'DRAINING' | 'INTERNAL';

export interface SfuRequestFrame {
  id: string;
  /** Channel (or node) the reply goes to. */
  replyTo: string;
  method: SfuMethod;
  params: unknown;
}
export type SfuReplyFrame = { id: string; ok: true; data: unknown } | { id: string; ok: false; code: SfuErrorCode; message: string };
