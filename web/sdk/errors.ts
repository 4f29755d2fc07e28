import type { ErrorBody, ErrorCode } from '../../protocol/index.ts';

/** Server error codes plus the ones only a client can produce. */
export type ClientErrorCode = ErrorCode | 'TIMEOUT' | 'DISCONNECTED' | 'AUTH_REQUIRED' | 'PROVIDER_ERROR' | 'HTTP_ERROR' | 'MEDIA_DEVICE_ERROR';

export class BlockRtcClientError extends Error {
  override readonly name = 'BlockRtcClientError';
  constructor(
    readonly code: ClientErrorCode,
    message: string,
    /** The server's error body, when the server answered with one. */
    readonly body: ErrorBody | null = null,
  ) {
    super(message);
  }

  get retryAfterMs(): number | undefined {
    return this.body?.retryAfterMs;
  }
}

export function errorCode(err: unknown): ClientErrorCode | null {
  return err instanceof BlockRtcClientError ? err.code : null;
}
