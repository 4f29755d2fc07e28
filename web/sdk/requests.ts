/**
 * Message requests: conversations started by people I have not accepted. They stay out of
 * the contact list (and get no receipts, typing or presence from me) until accepted here;
 * deleting one hides its messages for good, blocking also stops anything new from them.
 */
import type { Contact, MessageRequest, RequestsChangedEvent } from '../../protocol/index.ts';
import { normalize } from './address.ts';
import type { BlocksClient } from './blocks.ts';
import type { ChatClient } from './chat.ts';
import type { Engine } from './engine.ts';
import { Emitter } from './events.ts';

export interface RequestsEvents {
  /** The list changed: fetched again, or one was accepted, deleted or blocked (here or on another device). */
  change: { requests: MessageRequest[] };
  /** A request left the list; `contact` is set when it was accepted here. */
  resolved: { address: string; action: RequestsChangedEvent['action'] | 'blocked'; contact?: Contact };
}

export class RequestsClient extends Emitter<RequestsEvents> {
  private readonly byAddress = new Map<string, MessageRequest>();
  private loaded = false;
  private refreshTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly engine: Engine,
    private readonly blocks: BlocksClient,
    chat: ChatClient,
  ) {
    super();
    const s = engine.signal;
    s.on('requests.changed', (e) => this.drop(e.address, e.action));
    s.on('signal.open', ({ reconnect }) => {
      if (reconnect && this.loaded) this.refreshSoon();
    });
    // The first message of a conversation new to this device may be a request (the SDK does
    // not know the contact list, so a contact's first message also costs one list).
    chat.on('message', ({ entry, live }) => {
      if (this.loaded && live && !entry.outgoing && !entry.group && !this.byAddress.has(entry.peer) && chat.messages(entry.peer).length === 1) this.refreshSoon();
    });
    blocks.on('change', ({ address, blocked }) => {
      if (blocked) this.drop(address, 'blocked');
    });
    engine.on('session', () => {
      this.byAddress.clear();
      this.loaded = false;
    });
  }

  /** What the last `list()` answered, newest first. */
  get requests(): MessageRequest[] {
    return [...this.byAddress.values()].sort((a, b) => (b.lastMessage?.createdAt ?? '').localeCompare(a.lastMessage?.createdAt ?? ''));
  }

  has(address: string): boolean {
    return this.byAddress.has(normalize(address));
  }

  async list(): Promise<MessageRequest[]> {
    const r = await this.engine.signal.request('requests.list', {});
    this.loaded = true;
    this.byAddress.clear();
    for (const req of r.requests) this.byAddress.set(req.address, req);
    this.emit('change', { requests: this.requests });
    return this.requests;
  }

  /** Moves the conversation to the contact list. */
  async accept(address: string): Promise<Contact> {
    const peer = normalize(address);
    const r = await this.engine.signal.request('requests.accept', { address: peer });
    this.drop(peer, 'accepted', r.contact);
    return r.contact;
  }

  /** Removes the request and hides its messages; a later message starts a new request. */
  async delete(address: string): Promise<void> {
    const peer = normalize(address);
    await this.engine.signal.request('requests.delete', { address: peer });
    this.drop(peer, 'deleted');
  }

  /** Blocks the sender: the request goes away and nothing new from them reaches me. */
  async block(address: string): Promise<void> {
    await this.blocks.add(address);
  }

  private refreshSoon(): void {
    this.refreshTimer ??= setTimeout(() => {
      this.refreshTimer = null;
      void this.list().catch(() => undefined);
    }, 100);
  }

  private drop(address: string, action: RequestsEvents['resolved']['action'], contact?: Contact): void {
    const peer = normalize(address);
    const had = this.byAddress.delete(peer);
    this.emit('resolved', { address: peer, action, ...(contact ? { contact } : {}) });
    if (had) this.emit('change', { requests: this.requests });
  }
}
