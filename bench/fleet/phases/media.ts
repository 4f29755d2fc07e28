/**
 * Phase `media`: concurrent calls of real WebRTC peers (the operator's load generator,
 * `blockrtc loadtest`: mediasoup-client over werift — ICE, DTLS, SRTP — with synthetic
 * audio and video) through one signaling node and two `blockrtc sfu` processes of one
 * worker each, placed through the bench's Redis Cluster. Real peers rather than PlainTransports
 * driven from the bench: the figure wanted is the SFU with SRTP on, as browsers use it, and
 * placement and signaling under that load; the cost is the generator's CPU (werift encrypts
 * in JavaScript), which is measured apart. Figures: consumers per worker-core at the loss
 * seen, CPU per forwarded packet, call setup p50/p99.
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { freePortBase } from '../../../testkit/ports.ts';
import { startNode, type NodeProcess } from '../../../testkit/node.ts';
import { log } from '../../signaling/log.ts';
import type { Report as LoadtestReport } from '../../../loadtest/report.ts';
import { fleetCpuWatch, startNodes, withDescendants, type FleetContext } from '../context.ts';

const BIN = fileURLToPath(new URL('../../../bin/blockrtc.mjs', import.meta.url));
const PHASE = 4;

/** mediasoup worker processes under an SFU node (their command name is cut to 15 characters). */
function workerPids(sfu: NodeProcess): number[] {
  return withDescendants(sfu.proc.pid!).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('mediasoup-worke');
    } catch {
      return false;
    }
  });
}

export async function mediaPhase(ctx: FleetContext) {
  const m = ctx.P.media;
  const callEnv = { RATE_LIMIT_CALLS: '100000/60', CALL_MAX_RINGING_PER_CALLER: '1000', CALL_MAX_RINGING_PER_CALLEE: '1000' };
  const [sig] = await startNodes(ctx, 'media', 1, callEnv);
  const sfus: NodeProcess[] = [];
  const reportPath = join(tmpdir(), `fleet-media-${process.pid}.json`);
  try {
    for (let i = 0; i < m.sfuNodes; i++) sfus.push(await startNode('sfu', { ...ctx.env, ...callEnv, NODE_ID: `sfu${i}-${ctx.ipOctet}`, SFU_WORKERS: '1', SFU_PORT_BASE: String(await freePortBase(1)) }, ctx.P.childMaxLifeMs));
    const users = m.calls * m.participants;
    log(`  ${m.calls} calls of ${m.participants} (audio ${m.audioKbps} + video ${m.videoKbps} kbit/s each) over ${m.sfuNodes} SFU processes; ${m.workers} loadtest worker(s)`);
    const args = [BIN, 'loadtest', '--url', sig!.url, '--users', String(users), '--workers', String(m.workers), '--source-addresses', `127.${ctx.ipOctet}.${PHASE}.1`, '--connect-rate', '200',
      '--duration', String(m.durationSec), '--msgs-per-min', '0', '--typing-per-min', '0', '--reads-per-min', '0', '--calls', String(m.calls), '--participants', String(m.participants),
      '--video', '--audio-kbps', String(m.audioKbps), '--video-kbps', String(m.videoKbps), '--token-cache', 'none', '--report', reportPath];
    const lt = spawn('timeout', ['-s', 'KILL', String(m.durationSec + 600), process.execPath, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    // The CPU window is the mix (every call up and sending), read from the generator's progress lines.
    let cpu: ReturnType<typeof fleetCpuWatch> | null = null;
    let cpuReport: ReturnType<ReturnType<typeof fleetCpuWatch>['stop']> | null = null;
    const extra = [
      { label: 'sfuWorkers', pids: () => sfus.flatMap(workerPids) },
      { label: 'sfuNodes', pids: () => sfus.map((s) => s.proc.pid!) },
      { label: 'loadtest', pids: () => withDescendants(lt.pid!) },
    ];
    const stderr: string[] = [];
    createInterface({ input: lt.stderr! }).on('line', (l) => {
      stderr.push(l);
      if (stderr.length > 50) stderr.shift();
      if (!cpu && / mix /.test(l)) cpu = fleetCpuWatch(ctx, [sig!], [], extra);
      else if (cpu && !cpuReport && !/ mix /.test(l)) cpuReport = cpu.stop();
    });
    const code = await new Promise<number | null>((r) => lt.once('exit', r));
    const cpuMix = cpuReport ?? (cpu as ReturnType<typeof fleetCpuWatch> | null)?.stop() ?? null;
    let report: LoadtestReport;
    try {
      report = JSON.parse(readFileSync(reportPath, 'utf8')) as LoadtestReport;
    } catch {
      throw new Error(`loadtest exited with ${code} and no report:\n${stderr.join('\n')}`);
    }
    const c = report.calls;
    const tracks = m.participants * (m.participants - 1) * 2;
    const consumers = c.up * tracks;
    const packets = c.subscribers.reduce((a, s) => a + s.packets, 0);
    const mixSec = Math.max(1, c.subscribers.reduce((a, s) => Math.max(a, s.seconds), 0));
    const workerCores = cpuMix?.extraCores.sfuWorkers ?? NaN;
    const result = {
      peers: 'blockrtc loadtest (mediasoup-client over werift: ICE, DTLS-SRTP), synthetic Opus-sized audio and VP8-shaped video',
      calls: m.calls,
      participants: m.participants,
      sfuProcesses: sfus.length,
      workersPerSfu: 1,
      loadtestExit: code,
      callsUp: c.up,
      callsFailed: c.failed,
      setupMs: c.setupMs,
      firstMediaMs: c.firstMediaMs,
      lossPct: c.lossPct,
      jitterMs: c.jitterMs,
      consumers,
      consumersPerWorker: consumers / sfus.length,
      workerCores,
      consumersPerWorkerCore: Number.isFinite(workerCores) && workerCores > 0 ? Math.round(consumers / workerCores) : null,
      forwardedPacketsPerSecond: Math.round(packets / mixSec),
      cpuPerForwardedPacketUs: Number.isFinite(workerCores) ? Math.round(((workerCores * mixSec) / Math.max(1, packets)) * 1e6 * 100) / 100 : null,
      underOnePercentLoss: (c.lossPct.max ?? 100) < 1,
      cpuDuringMix: cpuMix,
      loadtestErrors: report.errors.byCode,
    };
    log(`  calls up ${c.up}/${m.calls}, setup p50 ${c.setupMs.p50} / p99 ${c.setupMs.p99} ms, loss mean ${c.lossPct.mean} % max ${c.lossPct.max} %; ${consumers} consumers, workers ${workerCores} cores, ${result.cpuPerForwardedPacketUs} µs/packet`);
    return result;
  } finally {
    rmSync(reportPath, { force: true });
    await Promise.all(sfus.map((s) => s.kill('SIGKILL')));
    await sig?.stop(5000);
  }
}
