/**
 * What run.ts hands every phase: the parameters, the environment of the nodes under test,
 * the secret their tokens are signed with, and where servers and sources are addressed.
 */
import type { BenchParameters } from '../parameters.ts';
import type { ServerProcess } from '../procs.ts';

export interface BenchContext {
  P: BenchParameters;
  /** Environment of every signaling node (holds the same JWT secret as `jwtSecret`). */
  env: Record<string, string>;
  jwtSecret: string;
  dbUrl: string;
  /** Which chat runs to do: fixed, max, steps. */
  chatRuns: Set<string>;
  /**
   * A fresh second octet per run: source ports left in TIME_WAIT by an earlier run (or
   * phase) never collide with this one's binds.
   */
  ipOctet: number;
}

/** Source address of load generator `i` in phase `phase`. */
export const sourceIp = (ctx: BenchContext, phase: number, i: number) => `127.${ctx.ipOctet}.${phase}.${i + 1}`;

export const wsUrl = (s: ServerProcess) => `${s.url.replace(/^http/, 'ws')}/ws`;
