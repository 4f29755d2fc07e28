/**
 * A worker process of `blockrtc loadtest` (forked by the orchestrator): holds its share of
 * the users and runs the phases it is told to — sign in, connect, mix, stop — reporting its
 * tallies every second. It leaves if the orchestrator goes away, and has a watchdog.
 */
import { ChatMix } from './chat.ts';
import type { CallMix } from './calls.ts';
import type { FromWorker, ToWorker, WorkerPlan } from './ipc.ts';
import { counters, status } from './state.ts';
import { Users } from './users.ts';

if (!process.send) {
  console.error('loadtest/worker.ts is started by `blockrtc loadtest`');
  process.exit(2);
}
const tell = (m: FromWorker) => process.send!(m);
process.on('disconnect', () => process.exit(0));
setTimeout(() => process.exit(3), Number(process.env.LOADTEST_WORKER_MAX_LIFE_MS ?? 4 * 3600_000)).unref();

let plan: WorkerPlan;
let users: Users;
let chat: ChatMix | null = null;
let calls: CallMix | null = null;
let callsModule: Promise<typeof import('./calls.ts')> | null = null;
let statusTimer: NodeJS.Timeout | null = null;
const pendingTokens = new Map<number, { address: string; token: string; expiresAt: number }>();

function flushTokens(): void {
  if (pendingTokens.size === 0) return;
  tell({ type: 'tokens', tokens: [...pendingTokens.entries()] });
  pendingTokens.clear();
}

async function handle(m: ToWorker): Promise<void> {
  switch (m.type) {
    case 'plan': {
      plan = m.plan;
      users = new Users(plan);
      // The WebRTC stack loads only when this worker has calls (it takes seconds to import),
      // while the users sign in.
      if (plan.calls.length > 0) callsModule = import('./calls.ts');
      users.onToken = (u) => pendingTokens.set(u.index, { address: u.address, token: u.token, expiresAt: u.expiresAt });
      statusTimer = setInterval(() => {
        flushTokens();
        tell({ type: 'status', status: status() });
      }, 1000);
      tell({ type: 'ready' });
      return;
    }
    case 'signIn':
      await users.signInAll();
      flushTokens();
      tell({ type: 'signedIn' });
      return;
    case 'connect':
      await users.connectAll(m.at, plan.connectRate);
      tell({ type: 'connected' });
      return;
    case 'mix': {
      const run = `${m.at.toString(36)}`;
      chat = new ChatMix(users, plan.mix, run);
      if (callsModule) calls = new (await callsModule).CallMix(users, plan.calls, plan.mix);
      counters.callsPlanned = plan.calls.length;
      users.live = true;
      await chat.acceptPartners();
      const wait = m.at - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      chat.start();
      const callsUp = calls?.start(Math.max(0, m.until - Date.now()));
      await new Promise((r) => setTimeout(r, Math.max(0, m.until - Date.now())));
      await chat.stop(10_000);
      await callsUp;
      tell({ type: 'mixDone' });
      return;
    }
    case 'stop': {
      await chat?.stop(2000);
      const subscribers = calls ? await calls.stop() : [];
      await users?.closeAll();
      if (statusTimer) clearInterval(statusTimer);
      flushTokens();
      tell({ type: 'done', status: status(), subscribers });
      setTimeout(() => process.exit(0), 200);
      return;
    }
  }
}

process.on('message', (m: ToWorker) => {
  handle(m).catch((err: unknown) => {
    tell({ type: 'fatal', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    setTimeout(() => process.exit(1), 200);
  });
});
