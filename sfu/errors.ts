import type { SfuErrorCode } from '../protocol/sfu.ts';

export class SfuError extends Error {
  constructor(
    readonly code: SfuErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SfuError';
  }
}
