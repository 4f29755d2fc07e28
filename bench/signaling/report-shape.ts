/** The parts of the report that more than one module reads (report building and the summary). */
import type { CpuPerOp } from './measure.ts';
import type { ConnectFigures } from './phases/connections.ts';
import type { Summary } from './stats.ts';

export type Report = Record<string, unknown>;

export interface IdleLike {
  startedRssBytes?: number;
  memory?: { rssPerConnectionBytes: number; heapPerConnectionBytes: number; asIsRssPerConnectionBytes: number; connections: number };
  connect?: ConnectFigures;
  cpuPerConnect?: CpuPerOp;
}
export interface ChatLike {
  fixed?: { rate: number; deliveryLatencyMs: Summary; persistedEqualsAcked: boolean; deliveredPerSecond: number; cpuPerMessage: CpuPerOp };
  max?: { deliveredPerSecond: number; deliveryLatencyMs: Summary; persistedEqualsAcked: boolean; cpuPerMessage: CpuPerOp };
  steps?: { rate: number; deliveredPerSecond: number; deliveryLatencyMs: Summary; persistedEqualsAcked: boolean }[];
}
