import { z } from 'zod';
import * as chat from './chat.ts';
import * as presence from './presence.ts';
import * as session from './session.ts';
import * as call from './call.ts';
import * as requests from './requests.ts';
import * as group from './group.ts';
import * as ens from './ens.ts';
import type { ErrorBody } from './errors.ts';

export * from './common.ts';
export * from './errors.ts';
export type * from './auth.ts';
export type { ChatMessage, SendResult, HistoryResult, SyncResult, ReceiptResult, ReceiptEvent, TypingEvent, UploadResult, MessageKind } from './chat.ts';
export type { PresenceState, Contact } from './presence.ts';
export type { HelloEvent, TokenEvent, DrainingEvent, ResyncEvent } from './session.ts';
export { verifyRequest } from './auth.ts';
export type * from './call.ts';
export type { MessageRequest, BlockEntry, BlocksChangedEvent, RequestsChangedEvent } from './requests.ts';
export type * from './group.ts';
export { MAX_MEMBERS_PER_REQUEST } from './group.ts';
export type { EnsNameEntry, EnsNamesResult, EnsResolveResult } from './ens.ts';
export { MAX_ENS_BATCH } from './ens.ts';
export { tokenGate, gateRule, type TokenGate, type GateRule } from './gates.ts';

/** Every request a client may send, keyed on `type`. */
export const requestSchemas = {
  'chat.send': chat.chatSend,
  'chat.history': chat.chatHistory,
  'chat.sync': chat.chatSync,
  'chat.delivered': chat.chatDelivered,
  'chat.read': chat.chatRead,
  'chat.typing': chat.chatTyping,
  'contacts.list': presence.contactsList,
  'contacts.add': presence.contactsAdd,
  'presence.query': presence.presenceQuery,
  'session.refresh': session.sessionRefresh,
  'session.signOut': session.sessionSignOut,
  'call.start': call.callStart,
  'call.accept': call.callAccept,
  'call.reject': call.callReject,
  'call.cancel': call.callCancel,
  'call.join': call.callJoin,
  'call.leave': call.callLeave,
  'call.history': call.callHistory,
  'call.turnCredentials': call.callTurnCredentials,
  'call.createTransport': call.callCreateTransport,
  'call.connectTransport': call.callConnectTransport,
  'call.restartIce': call.callRestartIce,
  'call.produce': call.callProduce,
  'call.pauseProducer': call.callPauseProducer,
  'call.closeProducer': call.callCloseProducer,
  'call.consume': call.callConsume,
  'call.resumeConsumer': call.callResumeConsumer,
  'call.setPreferredLayers': call.callSetPreferredLayers,
  'requests.list': requests.requestsList,
  'requests.accept': requests.requestsAccept,
  'requests.delete': requests.requestsDelete,
  'blocks.list': requests.blocksList,
  'blocks.add': requests.blocksAdd,
  'blocks.remove': requests.blocksRemove,
  'group.create': group.groupCreate,
  'group.get': group.groupGet,
  'group.list': group.groupList,
  'group.addMembers': group.groupAddMembers,
  'group.removeMember': group.groupRemoveMember,
  'group.leave': group.groupLeave,
  'group.update': group.groupUpdate,
  'group.setRole': group.groupSetRole,
  'group.accept': group.groupAccept,
  'group.decline': group.groupDecline,
  'group.send': group.groupSend,
  'group.history': group.groupHistory,
  'group.delivered': group.groupDelivered,
  'group.read': group.groupRead,
  'group.receipts': group.groupReceipts,
  'group.typing': group.groupTyping,
  'group.call': group.groupCall,
  'ens.names': ens.ensNames,
  'ens.resolve': ens.ensResolve,
} as const;

export type RequestType = keyof typeof requestSchemas;
export type Request<T extends RequestType = RequestType> = z.output<(typeof requestSchemas)[T]>;
export type RequestInput<T extends RequestType> = Omit<z.input<(typeof requestSchemas)[T]>, 'type' | 'id'>;

/** What each request answers with. */
export interface ResultMap extends group.GroupResults {
  'chat.send': chat.SendResult;
  'chat.history': chat.HistoryResult;
  'chat.sync': chat.SyncResult;
  'chat.delivered': chat.ReceiptResult;
  'chat.read': chat.ReceiptResult;
  'chat.typing': Record<string, never>;
  'contacts.list': { contacts: presence.Contact[] };
  'contacts.add': { contact: presence.Contact };
  'presence.query': { presence: presence.PresenceState[] };
  'session.refresh': session.TokenEvent;
  'session.signOut': Record<string, never>;
  'call.start': { callId: string; participants: call.CallParticipant[] };
  'call.accept': Record<string, never>;
  'call.reject': Record<string, never>;
  'call.cancel': Record<string, never>;
  'call.join': call.JoinResult;
  'call.leave': Record<string, never>;
  'call.history': { calls: call.CallSummary[] };
  'call.turnCredentials': { iceServers: call.IceServer[] };
  'call.createTransport': call.TransportResult;
  'call.connectTransport': Record<string, never>;
  'call.restartIce': { iceParameters: call.IceParameters };
  'call.produce': { producerId: string };
  'call.pauseProducer': Record<string, never>;
  'call.closeProducer': Record<string, never>;
  'call.consume': call.ConsumeResult;
  'call.resumeConsumer': Record<string, never>;
  'call.setPreferredLayers': Record<string, never>;
  'requests.list': { requests: requests.MessageRequest[] };
  'requests.accept': { contact: presence.Contact };
  'requests.delete': Record<string, never>;
  'blocks.list': { blocks: requests.BlockEntry[] };
  'blocks.add': { block: requests.BlockEntry };
  'blocks.remove': { removed: boolean };
  'ens.names': ens.EnsNamesResult;
  'ens.resolve': ens.EnsResolveResult;
}

/** Server-pushed events. */
export interface EventMap extends group.GroupEvents {
  'session.hello': session.HelloEvent;
  'session.token': session.TokenEvent;
  'session.draining': session.DrainingEvent;
  'session.resync': session.ResyncEvent;
  'chat.message': chat.ChatMessage;
  'chat.receipt': chat.ReceiptEvent;
  'chat.typing': chat.TypingEvent;
  'presence.update': presence.PresenceState;
  'call.incoming': call.IncomingCallEvent;
  'call.participant': call.ParticipantEvent;
  'call.ended': call.CallEndedEvent;
  'call.rejoin': { callId: string; reason: string };
  'call.peerJoined': { callId: string; peerId: string; address: string };
  'call.peerLeft': { callId: string; peerId: string; address: string };
  'call.producer': call.ProducerEvent;
  'call.producerClosed': { callId: string; producerId: string; peerId: string };
  'call.producerState': { callId: string; producerId: string; peerId: string; paused: boolean };
  'call.activeSpeaker': { callId: string; peerId: string; address: string };
  'blocks.changed': requests.BlocksChangedEvent;
  'requests.changed': requests.RequestsChangedEvent;
}
export type EventType = keyof EventMap;

/** Server → client frames. */
export type ResponseFrame<T extends RequestType = RequestType> =
  | { re: string; ok: true; data: ResultMap[T] }
  | { re: string | null; ok: false; error: ErrorBody };
export type EventFrame<E extends EventType = EventType> = { ev: E; data: EventMap[E] };
export type ServerFrame = ResponseFrame | EventFrame;

export function isRequestType(type: unknown): type is RequestType {
  return typeof type === 'string' && Object.hasOwn(requestSchemas, type);
}
