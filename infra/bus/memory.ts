import type { Bus } from './bus.ts';

/** The embedded mode's bus: one process, so delivery is a function call. */
export class MemoryBus implements Bus {
  private handler: (user: string, payload: string) => void = () => undefined;
  private readonly subscribed = new Set<string>();
  private groupHandler: (group: string, payload: string) => void = () => undefined;
  private readonly groups = new Set<string>();

  onDeliver(handler: (user: string, payload: string) => void): void {
    this.handler = handler;
  }
  async subscribe(user: string): Promise<void> {
    this.subscribed.add(user);
  }
  async unsubscribe(user: string): Promise<void> {
    this.subscribed.delete(user);
  }
  async publish(user: string, payload: string): Promise<void> {
    if (!this.subscribed.has(user)) return;
    // Asynchronous like the Redis bus, so callers see the same ordering either way.
    queueMicrotask(() => this.handler(user, payload));
  }
  onGroupDeliver(handler: (group: string, payload: string) => void): void {
    this.groupHandler = handler;
  }
  async subscribeGroup(group: string): Promise<void> {
    this.groups.add(group);
  }
  async unsubscribeGroup(group: string): Promise<void> {
    this.groups.delete(group);
  }
  async publishGroup(group: string, payload: string): Promise<void> {
    if (!this.groups.has(group)) return;
    queueMicrotask(() => this.groupHandler(group, payload));
  }
  onRecover(): void {
    // One process: nothing to lose.
  }
  async close(): Promise<void> {
    this.subscribed.clear();
    this.groups.clear();
  }
}
