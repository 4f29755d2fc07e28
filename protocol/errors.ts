/**
 * The one catalogue of error codes. Clients branch on `code`; HTTP answers use `status`;
 * errors that end a WebSocket use `close`.
 */
export const ERRORS = {
  // Sign-in
  AUTH_INVALID_MESSAGE: { status: 400, message: 'The sign-in message is not a valid EIP-4361 message' },
  AUTH_BAD_SIGNATURE: { status: 401, message: 'The signature does not match the address in the message' },
  AUTH_NONCE_INVALID: { status: 401, message: 'The nonce is unknown, expired or already used' },
  AUTH_DOMAIN_MISMATCH: { status: 401, message: 'The message was signed for another domain' },
  AUTH_URI_MISMATCH: { status: 401, message: 'The message was signed for another URI' },
  AUTH_CHAIN_NOT_ALLOWED: { status: 401, message: 'The chain id is not accepted here' },
  AUTH_MESSAGE_EXPIRED: { status: 401, message: 'The sign-in message has expired' },
  AUTH_MESSAGE_NOT_YET_VALID: { status: 401, message: 'The sign-in message is not valid yet' },
  AUTH_TOKEN_MISSING: { status: 401, message: 'A bearer token is required' },
  AUTH_TOKEN_EXPIRED: { status: 401, message: 'The token has expired; sign in again' },
  AUTH_TOKEN_INVALID: { status: 401, message: 'The token is not valid' },
  AUTH_TOKEN_SUPERSEDED: { status: 401, message: 'The token was replaced by a newer one; use the newest token' },
  AUTH_SESSION_ENDED: { status: 401, message: 'The session has ended (signed out or past its maximum age); sign in again', close: 4003 },
  TOO_MANY_CONNECTIONS: { status: 429, message: 'Too many open connections for this account; close another device first' },
  ORIGIN_NOT_ALLOWED: { status: 403, message: 'This origin is not allowed' },
  DEV_WALLET_DISABLED: { status: 404, message: 'The development wallet is not enabled on this server' },
  // Requests
  BAD_JSON: { status: 400, message: 'The frame is not valid JSON' },
  BAD_REQUEST: { status: 400, message: 'The request is malformed' },
  UNKNOWN_TYPE: { status: 400, message: 'Unknown request type' },
  INVALID_FIELDS: { status: 400, message: 'The request has invalid fields' },
  FRAME_TOO_LARGE: { status: 413, message: 'The frame is larger than allowed' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'The upload is larger than allowed' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'Only audio/* and video/* uploads are accepted' },
  NOT_FOUND: { status: 404, message: 'Not found' },
  FORBIDDEN: { status: 403, message: 'Not allowed' },
  SELF_MESSAGE: { status: 400, message: 'You cannot message yourself' },
  IDEMPOTENCY_CONFLICT: { status: 409, message: 'This client id was already used for a different message' },
  UPLOAD_QUOTA_EXCEEDED: { status: 413, message: 'The upload would exceed your storage quota' },
  MESSAGE_REJECTED: { status: 422, message: 'The database refused this message; sending it again will not help' },
  ATTACHMENT_INVALID: { status: 400, message: 'The attachment does not exist or does not belong to this conversation' },
  // Requests and blocks
  REQUEST_NOT_FOUND: { status: 404, message: 'There is no message request from this address' },
  BLOCK_SELF: { status: 400, message: 'You cannot block yourself' },
  BLOCK_LIMIT: { status: 409, message: 'Your block list is full; unblock someone first' },
  // Calls
  CALL_NOT_FOUND: { status: 404, message: 'No such call' },
  CALL_NOT_ALLOWED: { status: 403, message: 'You are not a participant of this call' },
  CALL_ENDED: { status: 409, message: 'The call has ended' },
  CALL_STATE: { status: 409, message: 'The call is not in a state that allows this' },
  NOT_IN_CALL: { status: 403, message: 'Join the call on this connection first' },
  TOO_MANY_PARTICIPANTS: { status: 400, message: 'Too many participants for one call' },
  MEDIA_UNAVAILABLE: { status: 503, message: 'No media server is available right now' },
  MEDIA_REJOIN: { status: 409, message: 'The media session is gone; join the call again' },
  MEDIA_REJECTED: { status: 400, message: 'The media server refused the request' },
  MEDIA_LIMIT: { status: 429, message: 'A media limit of this call was reached (participants, devices, transports or tracks)' },
  MEDIA_DUPLICATE: { status: 409, message: 'You already consume this producer' },
  MEDIA_REPLACED: { status: 409, message: 'Another device of yours joined this call and took over its media' },
  CALL_RINGING_LIMIT: { status: 429, message: 'Too many of your calls are ringing; wait for an answer or cancel one' },
  // Groups
  GROUP_NOT_FOUND: { status: 404, message: 'No such group' },
  NOT_GROUP_MEMBER: { status: 403, message: 'You are not a member of this group' },
  NOT_GROUP_ADMIN: { status: 403, message: 'Only an admin of this group can do this' },
  GROUP_FULL: { status: 409, message: 'The group has reached its member limit' },
  GROUP_NOT_INVITED: { status: 409, message: 'You have no pending invitation to this group' },
  GROUP_MEMBER_NOT_FOUND: { status: 404, message: 'That address is not a member of this group' },
  GROUP_LAST_ADMIN: { status: 409, message: 'A group needs an admin: promote another member first' },
  // Chain (JSON-RPC endpoints from CHAIN_RPC_URLS)
  CHAIN_NOT_CONFIGURED: { status: 501, message: 'This server has no JSON-RPC endpoint for that chain (CHAIN_RPC_URLS)' },
  CHAIN_UNAVAILABLE: { status: 503, message: 'The chain cannot be asked right now (the RPC endpoint failed or timed out); try again' },
  ENS_NAME_NOT_FOUND: { status: 404, message: 'The ENS name does not resolve to an address' },
  GATE_NOT_MET: { status: 403, message: 'You do not hold the tokens this requires' },
  // Protection and lifecycle
  RATE_LIMITED: { status: 429, message: 'Too many requests; slow down' },
  POLICY_VIOLATION: { status: 400, message: 'Connection closed for repeated abuse', close: 1008 },
  DRAINING: { status: 503, message: 'This node is shutting down; reconnect to another', close: 1012 },
  UNAVAILABLE: { status: 503, message: 'A dependency is unavailable; try again' },
  INTERNAL: { status: 500, message: 'Internal error' },
} as const satisfies Record<string, { status: number; message: string; close?: number }>;

export type ErrorCode = keyof typeof ERRORS;

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  /** Field-level problems for INVALID_FIELDS. */
  details?: { path: string; message: string }[];
  /** For RATE_LIMITED, UNAVAILABLE and CHAIN_UNAVAILABLE: when to try again. */
  retryAfterMs?: number;
}

export class BlockRtcError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly extra: Pick<ErrorBody, 'details' | 'retryAfterMs'> = {},
  ) {
    super(message ?? ERRORS[code].message);
    this.name = 'BlockRtcError';
    this.status = ERRORS[code].status;
  }

  toBody(): ErrorBody {
    return { code: this.code, message: this.message, ...this.extra };
  }
}

/** WebSocket close codes used by the server (4000–4999 are application codes). */
export const CLOSE = {
  NORMAL: 1000,
  POLICY: 1008,
  TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
  /** Sent by a client that got no `session.hello` in time. */
  NO_HELLO: 4000,
  TOKEN_EXPIRED: 4001,
  SESSION_ENDED: 4003,
  SLOW_CONSUMER: 4008,
} as const;
