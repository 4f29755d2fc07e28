import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const BIN = fileURLToPath(new URL('../bin/blockrtc.mjs', import.meta.url));
export const TEST_JWT_SECRET = 'test-secret-test-secret-test-secret-0123456789';

export interface NodeProcess {
  url: string;
  /** Where it serves /metrics (METRICS_PORT, a free port unless the test chose one). */
  metricsUrl: string;
  nodeId: string;
  proc: ChildProcess;
  logs: string[];
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Runs `blockrtc <command>` as a child process on a free port and waits until it listens.
 * A watchdog kills it after `maxLifeMs` whatever happens to the test.
 */
export async function startNode(command: 'signaling' | 'all' | 'sfu', env: Record<string, string>, maxLifeMs = 300_000): Promise<NodeProcess> {
  const nodeId = env.NODE_ID ?? `n${Math.random().toString(36).slice(2, 8)}`;
  const proc = spawn(process.execPath, [BIN, command], {
    env: {
      PATH: process.env.PATH ?? '',
      HOST: '127.0.0.1',
      PORT: '0',
      METRICS_PORT: '0',
      LOG_LEVEL: 'info',
      JWT_SECRET: TEST_JWT_SECRET,
      NODE_ID: nodeId,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const watchdog = setTimeout(() => proc.kill('SIGKILL'), maxLifeMs);
  watchdog.unref();
  void exited.then(() => clearTimeout(watchdog));
  // TEST_NODE_LOGS=1 shows what the nodes log while a test runs.
  const echo = process.env.TEST_NODE_LOGS ? (l: string) => process.stderr.write(`[${command} ${nodeId}] ${l}\n`) : () => undefined;
  createInterface({ input: proc.stderr! }).on('line', (l) => (logs.push(l), echo(l)));
  let metricsUrl = '';
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`node did not start in time:\n${logs.join('\n')}`));
    }, 90_000);
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      logs.push(line);
      echo(line);
      if (line.includes('"metrics listening"')) metricsUrl = (JSON.parse(line) as { url: string }).url;
      if (line.includes('signaling node listening')) {
        clearTimeout(t);
        resolve((JSON.parse(line) as { url: string }).url);
      } else if (command === 'sfu' && line.includes('sfu node ready')) {
        clearTimeout(t);
        resolve((JSON.parse(line) as { url: string | null }).url ?? '');
      }
    });
    void exited.then((code) => {
      clearTimeout(t);
      reject(new Error(`node exited with ${code}:\n${logs.join('\n')}`));
    });
  });
  return {
    url,
    metricsUrl,
    nodeId,
    proc,
    logs,
    exited,
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill(signal);
      return exited;
    },
  };
}

/** Runs `blockrtc migrate` against a database and waits for it. */
export async function migrate(databaseUrl: string): Promise<void> {
  const proc = spawn(process.execPath, [BIN, 'migrate'], { env: { PATH: process.env.PATH ?? '', DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn' }, stdio: 'inherit' });
  const code = await new Promise<number | null>((r) => proc.once('exit', r));
  if (code !== 0) throw new Error(`migrate exited with ${code}`);
}
