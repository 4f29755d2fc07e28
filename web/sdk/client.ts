import type { HelloEvent } from '../../protocol/index.ts';
import type { Eip1193Provider } from './auth.ts';
import { CallManager, type CallRetryPolicies } from './call/index.ts';
import { BlocksClient } from './blocks.ts';
import { ChatClient } from './chat.ts';
import { Engine, type EngineOptions, type Session } from './engine.ts';
import { GroupsClient } from './groups.ts';
import { GateClient } from './gates.ts';
import { NameClient } from './names.ts';
import { PresenceClient } from './presence.ts';
import { RequestsClient } from './requests.ts';
import type { SignalClient, SignalState } from './signal.ts';

import type { AppConfig } from '../../protocol/constants.ts';

export type { AppConfig };

export interface BlockRtcClientOptions extends EngineOptions {
  /** How calls retry joining and rejoining (defaults: see call/retry.ts). */
  callRetry?: Partial<CallRetryPolicies>;
}

/**
 * The SDK entry point: one per signed-in user and tab.
 *
 *   const client = new BlockRtcClient({ baseUrl: 'https://chat.example' });
 *   await client.signIn(window.ethereum);   // or client.resume()
 *   await client.connect();
 *   client.chat.sendText(peer, 'hi');
 *   const call = await client.calls.start(peer, 'video');
 *   const group = await client.groups.create({ name: 'Team', members: [a, b] });
 *   client.chat.sendText(groupConversation(group.info.id), 'hello all');
 */
export class BlockRtcClient {
  readonly engine: Engine;
  readonly chat: ChatClient;
  readonly presence: PresenceClient;
  /** ENS names for display, and name → address. */
  readonly names: NameClient;
  /** Token gates of groups (set and clear by admins). */
  readonly gates: GateClient;
  readonly calls: CallManager;
  readonly groups: GroupsClient;
  readonly blocks: BlocksClient;
  readonly requests: RequestsClient;

  constructor(options: BlockRtcClientOptions = {}) {
    this.engine = new Engine(options);
    this.chat = new ChatClient(this.engine);
    this.presence = new PresenceClient(this.engine);
    this.names = new NameClient(this.engine);
    this.gates = new GateClient(this.engine);
    this.calls = new CallManager(this.engine, options.callRetry);
    this.groups = new GroupsClient(this.engine, this.calls);
    this.blocks = new BlocksClient(this.engine);
    this.requests = new RequestsClient(this.engine, this.blocks, this.chat);
  }

  static async fetchConfig(baseUrl: string = globalThis.location.origin): Promise<AppConfig> {
    const res = await fetch(`${baseUrl.replace(/\/$/, '')}/app-config.json`);
    return (await res.json()) as AppConfig;
  }

  get signal(): SignalClient {
    return this.engine.signal;
  }

  get address(): string | null {
    return this.engine.address;
  }

  get state(): SignalState {
    return this.engine.signal.state;
  }

  get session(): Session | null {
    return this.engine.session;
  }

  signIn(provider: Eip1193Provider): Promise<Session> {
    return this.engine.signIn(provider);
  }

  /** Re-uses a stored, still valid session (no wallet prompt). */
  resume(): Session | null {
    return this.engine.resume();
  }

  connect(): Promise<HelloEvent> {
    return this.engine.connect();
  }

  signOut(): void {
    for (const s of [this.calls.current]) void s?.leave();
    this.engine.signOut();
  }
}

