import { randomBytes } from 'node:crypto';
import type { MediaEventFrame, SfuErrorCode, SfuMethod, SfuParams, SfuReplyFrame, SfuRequestFrame, SfuResult, SfuToSignalingFrame } from '../protocol/sfu.ts';
import type { Logger } from '../infra/logger.ts';
import type { RedisClient } from '../infra/redis/connect.ts';
import { SfuError } from './errors.ts';
import type { SfuService } from './service.ts';

/**
 * How signaling nodes reach SFU nodes: typed requests with ids, timeouts and clear errors;
 * and the way back: media events for the participants this signaling node serves.
 */
export interface SfuClient {
  request<M extends SfuMethod>(node: string, method: M, params: SfuParams<M>): Promise<SfuResult<M>>;
  onEvent(handler: (frame: MediaEventFrame) => void): void;
  close(): Promise<void>;
}

/** No media tier configured: every request fails with a clear code, no event ever comes. */
export class NoSfuClient implements SfuClient {
  async request<M extends SfuMethod>(): Promise<SfuResult<M>> {
    throw new SfuError('UNAVAILABLE', 'no media node is configured');
  }
  onEvent(): void {}
  async close(): Promise<void> {}
}

export const commandChannel = (prefix: string, node: string) => `${prefix}{sfu:${node}}:cmd`;
export const replyChannel = (prefix: string, node: string) => `${prefix}{sig:${node}}:rep`;

/** Embedded mode: the SFU is in this process; its events come straight back. */
export class LocalSfuClient implements SfuClient {
  private handler: (frame: MediaEventFrame) => void = () => undefined;
  constructor(private readonly nodes: Map<string, SfuService>) {
    for (const svc of nodes.values()) svc.onEvent((_origin, frame) => this.handler(frame));
  }
  async request<M extends SfuMethod>(node: string, method: M, params: SfuParams<M>): Promise<SfuResult<M>> {
    const svc = this.nodes.get(node);
    if (!svc) throw new SfuError('UNAVAILABLE', `media node ${node} is not running`);
    return svc.handle(method, params);
  }
  onEvent(handler: (frame: MediaEventFrame) => void): void {
    this.handler = handler;
  }
  async close(): Promise<void> {}
}

/**
 * Requests over sharded pub/sub: each SFU node listens on its own channel, each signaling
 * node on its own reply channel; a pending map pairs replies with requests and every
 * pending request is rejected on timeout or close.
 */
export class RedisSfuClient implements SfuClient {
  private readonly pending = new Map<string, { resolve: (d: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private readonly replyTo: string;
  private seq = 0;
  private readonly idBase = randomBytes(4).toString('hex');
  private closed = false;
  private eventHandler: (frame: MediaEventFrame) => void = () => undefined;
  private readonly onMessage = (channel: string, message: string) => {
    if (channel !== this.replyTo) return;
    let reply: SfuToSignalingFrame;
    try {
      reply = JSON.parse(message) as SfuToSignalingFrame;
    } catch {
      return;
    }
    if (reply.id === undefined) return this.eventHandler(reply);
    const p = this.pending.get(reply.id);
    if (!p) return;
    this.pending.delete(reply.id);
    clearTimeout(p.timer);
    if (reply.ok) p.resolve(reply.data);
    else p.reject(new SfuError(reply.code, reply.message));
  };

  private constructor(
    private readonly cmd: RedisClient,
    private readonly sub: RedisClient,
    private readonly prefix: string,
    node: string,
    private readonly timeoutMs: number,
  ) {
    this.replyTo = replyChannel(prefix, node);
    sub.on('smessage', this.onMessage);
  }

  static async create(cmd: RedisClient, sub: RedisClient, prefix: string, node: string, timeoutMs: number): Promise<RedisSfuClient> {
    const c = new RedisSfuClient(cmd, sub, prefix, node, timeoutMs);
    await sub.ssubscribe(c.replyTo);
    return c;
  }

  async request<M extends SfuMethod>(node: string, method: M, params: SfuParams<M>): Promise<SfuResult<M>> {
    if (this.closed) throw new SfuError('UNAVAILABLE', 'client closed');
    const id = `${this.idBase}.${(++this.seq).toString(36)}`;
    const frame: SfuRequestFrame = { id, replyTo: this.replyTo, method, params };
    return new Promise<SfuResult<M>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new SfuError('UNAVAILABLE', `media node ${node} did not answer ${method} in ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(id, { resolve: resolve as (d: unknown) => void, reject, timer });
      this.cmd.spublish(commandChannel(this.prefix, node), JSON.stringify(frame)).catch((err: unknown) => {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new SfuError('UNAVAILABLE', `cannot reach media node: ${(err as Error).message}`));
      });
    });
  }

  onEvent(handler: (frame: MediaEventFrame) => void): void {
    this.eventHandler = handler;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.sub.off('smessage', this.onMessage);
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new SfuError('UNAVAILABLE', 'client closed'));
      this.pending.delete(id);
    }
  }
}

/** The SFU side: executes commands from its channel and answers on the caller's channel. */
export class RedisCommandServer {
  private readonly channel: string;
  private readonly prefix: string;
  private readonly onMessage = (channel: string, message: string) => {
    if (channel !== this.channel) return;
    let frame: SfuRequestFrame;
    try {
      frame = JSON.parse(message) as SfuRequestFrame;
    } catch {
      return;
    }
    void this.execute(frame);
  };

  constructor(
    private readonly cmd: RedisClient,
    private readonly sub: RedisClient,
    prefix: string,
    node: string,
    private readonly service: SfuService,
    private readonly log: Logger,
  ) {
    this.prefix = prefix;
    this.channel = commandChannel(prefix, node);
    service.onEvent((origin, frame) => this.sendEvent(origin, frame));
  }

  /** A media event goes to the reply channel of the signaling node serving its recipients. */
  private sendEvent(origin: string, frame: MediaEventFrame): void {
    this.cmd.spublish(replyChannel(this.prefix, origin), JSON.stringify(frame)).catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'media event not sent'));
  }

  async start(): Promise<void> {
    this.sub.on('smessage', this.onMessage);
    await this.sub.ssubscribe(this.channel);
  }

  private async execute(frame: SfuRequestFrame): Promise<void> {
    let reply: SfuReplyFrame;
    try {
      const data = await this.service.handle(frame.method, frame.params as never);
      reply = { id: frame.id, ok: true, data };
    } catch (err) {
      const code: SfuErrorCode = err instanceof SfuError ? err.code : 'INTERNAL';
      if (code === 'INTERNAL') this.log.error({ err, method: frame.method }, 'media command failed');
      reply = { id: frame.id, ok: false, code, message: err instanceof Error ? err.message : String(err) };
    }
    await this.cmd.spublish(frame.replyTo, JSON.stringify(reply)).catch((err: unknown) => this.log.warn({ err }, 'reply not sent'));
  }

  async stop(): Promise<void> {
    this.sub.off('smessage', this.onMessage);
    await this.sub.sunsubscribe(this.channel).catch(() => undefined);
  }
}
