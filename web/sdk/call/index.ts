/** Calls: the public API of the call modules (the rest is internal to this folder). */
export { CallManager, type CallManagerEvents, type IncomingCall } from './manager.ts';
export { CallSession } from './session.ts';
export { defaultCallRetry, type CallRetryPolicies } from './retry.ts';
export type { CallKind, CallOptions, CallSessionEvents, CallState, InboundStat, MediaSource, RemoteTrack, TransportDirection } from './types.ts';
