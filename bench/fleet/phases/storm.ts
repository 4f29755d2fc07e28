import type { FleetContext } from '../context.ts';
export async function stormPhase(ctx: FleetContext): Promise<object> {
  void ctx;
  throw new Error('not yet');
}
