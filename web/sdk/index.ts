/** BlockRTC browser SDK: wallet sign-in, chat, presence and SFU calls over one WebSocket. */
export { BlockRtcClient, type AppConfig, type BlockRtcClientOptions } from './client.ts';
export { Engine, type EngineOptions, type EngineEvents, type Session } from './engine.ts';
export {
  SignalClient,
  ExponentialBackoffPolicy,
  SUBPROTOCOL,
  BEARER_PROTOCOL_PREFIX,
  type SignalState,
  type SignalClientEvents,
  type SignalClientOptions,
  type ReconnectPolicy,
  type ReconnectContext,
  type BackoffOptions,
  type TokenSource,
  type RequestOptions,
} from './signal.ts';
export { signInWithEthereum, tokenExpiry, type Eip1193Provider, type SignInOptions } from './auth.ts';
export { WalletProvider } from './wallet-provider.ts';
export { normalize as normalizeAddress } from './address.ts';
export { ChatClient, type ChatEntry, type ChatEvents, type DeliveryStatus } from './chat.ts';
export { PresenceClient, type PresenceEvents } from './presence.ts';
export { GroupsClient, type GroupsEvents, type GroupState, type GroupStanding, type CreateGroupInput, type GroupUpdate } from './groups.ts';
export { RequestsClient, type RequestsEvents } from './requests.ts';
export { BlocksClient, type BlocksEvents } from './blocks.ts';
export { conversationKey, groupConversation, groupOf } from './conversation.ts';
export type { ReceiptSummary } from './group-receipts.ts';
export { NameClient, type NameEvents } from './names.ts';
export { GateClient, buildGate, describeGate, type SimpleGate } from './gates.ts';
export {
  CallManager,
  CallSession,
  type CallKind,
  type CallOptions,
  type CallState,
  type CallSessionEvents,
  type CallManagerEvents,
  type CallRetryPolicies,
  type IncomingCall,
  type InboundStat,
  type MediaSource,
  type RemoteTrack,
  type TransportDirection,
} from './call/index.ts';
export { BlockRtcClientError, errorCode, type ClientErrorCode } from './errors.ts';
export { Emitter, type Listener } from './events.ts';
export { MemoryStore, type KeyValueStore } from './storage.ts';
export type {
  ChatMessage,
  Contact,
  PresenceState,
  CallParticipant,
  ReceiptEvent,
  HelloEvent,
  EventMap,
  ResultMap,
  RequestType,
  GroupInfo,
  GroupMember,
  GroupRole,
  GroupSystem,
  GroupMessage,
  GroupReceiptCount,
  GroupCallEvent,
  MessageRequest,
  BlockEntry,
} from '../../protocol/index.ts';
export type { EnsNamesResult, EnsResolveResult } from '../../protocol/index.ts';
