import type { DtlsParameters, IceCandidate, IceParameters, RtpCapabilities, RtpParameters } from 'mediasoup-client/types';
import { z } from 'zod';
import { address } from './common.ts';

// Type-only: the mediasoup-client shapes (erased at build time) are what a browser produces
// and consumes; mediasoup's own types on the server are structurally the same JSON.
export type { DtlsParameters, IceCandidate, IceParameters, RtpCapabilities, RtpParameters };

const id = z.string().min(1).max(64);
const callId = z.string().uuid();

/**
 * Media parameters are produced and checked by mediasoup, so validation here only asks for an
 * object. The inferred type names the shape a client sends; its top-level fields are optional
 * because nothing here guarantees them (the SFU rejects what mediasoup cannot parse).
 */
function media<T extends object>() {
  return z.custom<Partial<T>>((v) => typeof v === 'object' && v !== null && !Array.isArray(v), { message: 'Expected an object' });
}

export const callStart = z.strictObject({ type: z.literal('call.start'), id, to: z.array(address).min(1).max(63), kind: z.enum(['audio', 'video']) });
export const callAccept = z.strictObject({ type: z.literal('call.accept'), id, callId });
export const callReject = z.strictObject({ type: z.literal('call.reject'), id, callId });
export const callCancel = z.strictObject({ type: z.literal('call.cancel'), id, callId });
export const callJoin = z.strictObject({
  type: z.literal('call.join'),
  id,
  callId,
  /** Stable per browser tab/app install: joining again from it replaces the old media session. */
  device: z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/),
});
export const callLeave = z.strictObject({ type: z.literal('call.leave'), id, callId });
/** Fresh TURN credentials for a long call (only for a participant joined on this connection). */
export const callTurnCredentials = z.strictObject({ type: z.literal('call.turnCredentials'), id, callId });
/** A page cursor: an ISO time PostgreSQL can compare with (year 1 or later; ISO's year 0000 is out of its range). */
const before = z.string().datetime().refine((v) => !v.startsWith('0000'), 'expected a time in year 1 or later');
export const callHistory = z.strictObject({ type: z.literal('call.history'), id, before: before.optional(), limit: z.number().int().min(1).max(100).default(20) });

export const callCreateTransport = z.strictObject({ type: z.literal('call.createTransport'), id, callId, direction: z.enum(['send', 'recv']) });
export const callConnectTransport = z.strictObject({ type: z.literal('call.connectTransport'), id, callId, transportId: z.string().uuid(), dtlsParameters: media<DtlsParameters>() });
export const callRestartIce = z.strictObject({ type: z.literal('call.restartIce'), id, callId, transportId: z.string().uuid() });
export const callProduce = z.strictObject({
  type: z.literal('call.produce'),
  id,
  callId,
  transportId: z.string().uuid(),
  kind: z.enum(['audio', 'video']),
  rtpParameters: media<RtpParameters>(),
  source: z.enum(['mic', 'camera', 'screen']),
  paused: z.boolean().default(false),
});
export const callPauseProducer = z.strictObject({ type: z.literal('call.pauseProducer'), id, callId, producerId: z.string().uuid(), paused: z.boolean() });
export const callCloseProducer = z.strictObject({ type: z.literal('call.closeProducer'), id, callId, producerId: z.string().uuid() });
export const callConsume = z.strictObject({ type: z.literal('call.consume'), id, callId, transportId: z.string().uuid(), producerId: z.string().uuid(), rtpCapabilities: media<RtpCapabilities>() });
export const callResumeConsumer = z.strictObject({ type: z.literal('call.resumeConsumer'), id, callId, consumerId: z.string().uuid() });
export const callSetPreferredLayers = z.strictObject({
  type: z.literal('call.setPreferredLayers'),
  id,
  callId,
  consumerId: z.string().uuid(),
  spatialLayer: z.number().int().min(0).max(3),
  temporalLayer: z.number().int().min(0).max(3).optional(),
});

export type CallParticipantState = 'ringing' | 'accepted' | 'rejected' | 'missed' | 'busy' | 'joined' | 'left';

export interface CallParticipant {
  address: string;
  role: 'initiator' | 'invitee';
  state: CallParticipantState;
  joinedAt: string | null;
  leftAt: string | null;
}

export interface CallSummary {
  callId: string;
  kind: 'audio' | 'video';
  initiator: string;
  createdAt: string;
  answeredAt: string | null;
  endedAt: string | null;
  endReason: string | null;
  participants: CallParticipant[];
  /** The group it was started to, if any. */
  group?: string;
}

export interface IceServer {
  urls: string[];
  username: string;
  credential: string;
}

/** Any mediasoup object as JSON, where no narrower type applies. */
export type MediaJson = Record<string, unknown>;

export interface JoinResult {
  callId: string;
  peerId: string;
  rtpCapabilities: RtpCapabilities;
  iceServers: IceServer[];
  producers: ProducerEvent[];
  participants: CallParticipant[];
}

export interface ProducerEvent {
  callId: string;
  producerId: string;
  peerId: string;
  address: string;
  kind: 'audio' | 'video';
  source: 'mic' | 'camera' | 'screen';
  paused: boolean;
}

export interface TransportResult {
  id: string;
  iceParameters: IceParameters;
  iceCandidates: IceCandidate[];
  dtlsParameters: DtlsParameters;
}

export interface ConsumeResult {
  id: string;
  producerId: string;
  kind: 'audio' | 'video';
  rtpParameters: RtpParameters;
  type: string;
  producerPaused: boolean;
}

export interface IncomingCallEvent {
  callId: string;
  from: string;
  kind: 'audio' | 'video';
  participants: string[];
  expiresAt: string;
  /** Set when the call was started to a group (`group.call`): the group's id. */
  group?: string;
}
export interface ParticipantEvent {
  callId: string;
  address: string;
  state: CallParticipantState;
}
export interface CallEndedEvent {
  callId: string;
  reason: string;
}
