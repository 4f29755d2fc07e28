import type { FleetContext } from '../context.ts';
export async function chatPhase(ctx: FleetContext): Promise<object> {
  void ctx;
  throw new Error('not yet');
}
