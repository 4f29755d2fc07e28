import { conversationKey, groupConversation, groupOf, type BlockRtcClient, type ChatEntry, type Contact, type GroupState } from '../sdk/index.ts';
import { Composer } from './composer.ts';
import { contactHeader, groupBanner, groupHeaderParts, requestBanner, type HeadActions } from './conversation-head.ts';
import { openCreateGroup } from './group-dialog.ts';
import { GroupPanel } from './group-panel.ts';
import { groupAvatar, systemText, who } from './group-ui.ts';
import { messageElement } from './message-view.ts';
import { RequestsView } from './requests-view.ts';
import { avatar, dayOf, h, icon, isEnsName, relativeTime, shortAddress, toast } from './ui.ts';

/** A row of the conversation list: an accepted contact or a group. */
interface ConversationRow {
  /** The conversation key: an address or `g:<group id>`. */
  key: string;
  lastText: string;
  lastAt: string | null;
  unread: number;
}

type Tab = 'chats' | 'requests';

/** Sidebar (me, add contact, new group, chats and requests) and the open conversation. */
export class ChatView {
  private readonly offs: (() => void)[] = [];
  /** Accepted contacts and groups; message requests are listed by RequestsView. */
  private readonly rows = new Map<string, ConversationRow>();
  private open: string | null = null;
  private tab: Tab = 'chats';
  private readonly el: HTMLElement;
  private readonly list: HTMLElement;
  private readonly requestsView: RequestsView;
  private readonly tabs: Record<Tab, HTMLButtonElement>;
  private readonly conv: HTMLElement;
  private readonly status: HTMLElement;
  private messagesEl: HTMLElement | null = null;
  private typingEl: HTMLElement | null = null;
  private panel: GroupPanel | null = null;
  private readonly rendered = new Map<string, HTMLElement>();
  private readonly typists = new Set<string>();
  private composer: Composer | null = null;
  private readonly head: HeadActions = {
    back: () => this.el.classList.remove('has-conv'),
    toggleMembers: () => this.togglePanel(),
    open: (key) => this.openConversation(key),
  };

  constructor(
    private readonly client: BlockRtcClient,
    root: HTMLElement,
    onSignOut: () => void,
  ) {
    const me = client.address ?? '';
    this.status = h('span', { class: 'status', 'data-testid': 'conn-status', 'data-state': client.state }, label(client.state));
    const input = h('input', { placeholder: 'Add a wallet address (0x…) or ENS name', 'data-testid': 'add-contact-input', spellcheck: false, autocomplete: 'off' });
    const addError = h('div', { class: 'add-error', 'data-testid': 'add-contact-error' });
    const add = async () => {
      addError.textContent = '';
      try {
        // A name (alice.eth) is turned into its address first; contacts are kept by address.
        const value = input.value.trim();
        const address = isEnsName(value) ? (await client.names.resolve(value)).address : value;
        const c = await client.chat.addContact(address);
        input.value = '';
        this.upsertContact(c);
        this.showTab('chats');
        this.openConversation(c.address);
      } catch (err) {
        addError.textContent = (err as Error).message;
      }
    };
    input.addEventListener('keydown', (e) => e.key === 'Enter' && void add());
    this.list = h('div', { class: 'contacts', 'data-testid': 'contacts' });
    this.requestsView = new RequestsView(client, (a) => this.openConversation(a), (a) => this.open === a);
    const tab = (t: Tab, text: string) => h('button', { class: 'tab', role: 'tab', 'data-testid': `tab-${t}`, onclick: () => this.showTab(t) }, text);
    this.tabs = { chats: tab('chats', 'Chats'), requests: tab('requests', 'Requests') };
    this.conv = h('section', { class: 'conversation' });
    const sidebar = h(
      'aside',
      { class: 'sidebar' },
      h(
        'div',
        { class: 'me' },
        avatar(me),
        h('div', { class: 'who' }, h('strong', { 'data-testid': 'me-address', title: me }, shortAddress(me)), this.status),
        h('button', { class: 'icon-btn', title: 'New group', 'aria-label': 'New group', 'data-testid': 'new-group', onclick: () => this.newGroup() }, icon('users')),
        h('button', { class: 'icon-btn', title: 'Sign out', 'aria-label': 'Sign out', 'data-testid': 'sign-out', onclick: onSignOut }, icon('logout')),
      ),
      h('div', { class: 'add-contact' }, input, h('button', { class: 'btn btn-primary', 'data-testid': 'add-contact-btn', onclick: () => void add() }, 'Add')),
      addError,
      h('div', { class: 'tabs', role: 'tablist' }, this.tabs.chats, this.tabs.requests),
      this.list,
      this.requestsView.el,
    );
    this.el = h('div', { class: 'app', 'data-testid': 'main' }, sidebar, this.conv);
    root.replaceChildren(this.el);
    this.showTab('chats');
    this.renderConversation();

    const { chat, presence, engine, groups, requests, blocks } = client;
    this.offs.push(
      engine.on('state', (s) => {
        this.status.dataset.state = s;
        this.status.textContent = label(s);
      }),
      chat.on('message', ({ entry, live }) => this.onMessage(entry, live)),
      chat.on('update', ({ entry }) => this.onUpdate(entry)),
      chat.on('typing', ({ peer, from, typing }) => {
        if (peer !== this.open) return;
        if (typing) this.typists.add(from);
        else this.typists.delete(from);
        this.renderTyping();
      }),
      presence.on('change', () => {
        this.renderContacts();
        this.renderHeaderPresence();
      }),
      client.names.on('change', ({ address }) => {
        if (this.rows.has(address)) this.renderContacts();
        if (address === this.open) this.renderHeaderName();
        this.panel?.namesChanged();
      }),
      groups.on('change', (g) => this.onGroup(g)),
      requests.on('change', () => this.renderRequests()),
      requests.on('resolved', ({ address, action, contact }) => {
        if (contact) this.upsertContact(contact);
        // Accepted on another device: the contact list has it now.
        else if (action === 'accepted') void this.reloadContacts();
        if (this.open === address) this.renderConversation();
      }),
      blocks.on('change', ({ address }) => {
        this.renderContacts();
        if (this.open === address) this.renderConversation();
      }),
      // Groups, requests and blocks list themselves again after a reconnect (SDK); contacts here.
      engine.signal.on('signal.open', ({ reconnect }) => reconnect && void this.reloadContacts()),
      // The "join the call" banner of an open group depends on whether I am in that call.
      client.calls.on('session', () => this.refreshOpenGroup()),
      client.calls.on('session-ended', () => this.refreshOpenGroup()),
    );
  }

  destroy(): void {
    for (const off of this.offs) off();
    this.client.chat.setOpenConversation(null);
    this.composer?.destroy();
    this.el.remove();
  }

  /** Contacts, groups, requests and blocks, after (re)connecting. */
  async loadContacts(): Promise<void> {
    const { chat, groups, requests, blocks } = this.client;
    // The side lists are not worth failing the contact list for; each shows what it got.
    const side = (p: Promise<unknown>, what: string) => p.catch((err: unknown) => toast(`Could not load ${what}: ${(err as Error).message}`));
    const [list] = await Promise.all([chat.listContacts(), side(groups.list(), 'groups'), side(requests.list(), 'requests'), side(blocks.list(), 'blocks')]);
    for (const c of list) this.upsertContact(c);
  }

  private async reloadContacts(): Promise<void> {
    const list = await this.client.chat.listContacts().catch(() => []);
    for (const c of list) this.upsertContact(c);
  }

  private showTab(t: Tab): void {
    this.tab = t;
    for (const [k, b] of Object.entries(this.tabs)) {
      b.classList.toggle('active', k === t);
      b.setAttribute('aria-selected', String(k === t));
    }
    this.list.hidden = t !== 'chats';
    this.requestsView.el.hidden = t !== 'requests';
    this.renderContacts();
    this.renderRequests();
  }

  private newGroup(): void {
    const contacts = [...this.rows.keys()].filter((k) => !groupOf(k));
    openCreateGroup(this.client, contacts, (g) => {
      this.showTab('chats');
      this.openConversation(groupConversation(g.info.id));
    });
  }

  private row(key: string): ConversationRow {
    let row = this.rows.get(key);
    if (!row) this.rows.set(key, (row = { key, lastText: '', lastAt: null, unread: 0 }));
    return row;
  }

  private upsertContact(c: Contact): void {
    const row = this.row(c.address);
    if (c.lastMessage && (!row.lastAt || c.lastMessage.createdAt >= row.lastAt)) {
      row.lastAt = c.lastMessage.createdAt;
      row.lastText = preview(c.lastMessage.kind, c.lastMessage.text, c.lastMessage.from === this.client.address);
    }
    row.unread = c.address === this.open ? 0 : c.unread;
    this.client.presence.set(c.presence);
    this.renderContacts();
  }

  private onGroup(g: GroupState): void {
    const key = groupConversation(g.info.id);
    if (g.standing === 'active' || g.standing === 'invited') {
      const row = this.row(key);
      const last = g.lastMessage;
      if (last && (!row.lastAt || last.createdAt > row.lastAt)) {
        row.lastAt = last.createdAt;
        row.lastText = last.kind === 'system' ? 'Group updated' : `${who(last.from, this.client.address)}: ${preview(last.kind, last.text, false)}`;
        if (key !== this.open) row.unread = g.unread;
      }
      row.lastAt ??= g.info.createdAt;
    }
    this.renderContacts();
    if (key === this.open) {
      this.renderGroupHeader(g);
      this.panel?.render(g);
    }
  }

  private onMessage(entry: ChatEntry, live: boolean): void {
    const isContact = this.rows.has(entry.peer);
    if (!entry.group && !isContact && !entry.outgoing) {
      // Not an accepted contact: a message request (RequestsView lists it), unless it is open.
      if (entry.peer === this.open) this.renderMessage(entry, live);
      return;
    }
    if (!entry.group && !isContact) void this.client.presence.query([entry.peer]).catch(() => undefined);
    else if (!entry.group && live && !entry.outgoing && this.client.presence.isUnknown(entry.peer)) {
      // A message from someone whose presence was unknown: they share it with us now.
      void this.client.presence.query([entry.peer]).catch(() => undefined);
    }
    const row = this.row(entry.peer);
    if (!row.lastAt || entry.createdAt >= row.lastAt) {
      row.lastAt = entry.createdAt;
      row.lastText = entry.kind === 'system' ? systemText(entry.system, this.client.address) : entry.group && !entry.outgoing ? `${this.client.names.display(entry.from)}: ${preview(entry.kind, entry.text, false)}` : preview(entry.kind, entry.text, entry.outgoing);
    }
    if (live && !entry.outgoing && entry.kind !== 'system' && !entry.readAt && entry.peer !== this.open) row.unread++;
    this.renderContacts();
    if (entry.peer === this.open) this.renderMessage(entry, live);
  }

  private onUpdate(entry: ChatEntry): void {
    if (entry.peer !== this.open) return;
    this.renderMessage(entry, false);
  }

  private renderRequests(): void {
    this.requestsView.render();
    const n = this.client.requests.requests.length;
    this.tabs.requests.replaceChildren('Requests', n > 0 ? h('span', { class: 'badge', 'data-testid': 'requests-count' }, String(n)) : '');
  }

  private renderContacts(): void {
    if (this.tab !== 'chats') return;
    const rows = [...this.rows.values()].sort((a, b) => (b.lastAt ?? '').localeCompare(a.lastAt ?? ''));
    this.client.names.want(rows.map((r) => r.key).filter((k) => !groupOf(k)));
    if (rows.length === 0) {
      this.list.replaceChildren(h('div', { class: 'empty-contacts' }, 'No conversations yet.', h('br'), 'Add a wallet address above or start a group.'));
      return;
    }
    this.list.replaceChildren(...rows.map((r) => (groupOf(r.key) ? this.groupRow(r) : this.contactRow(r))));
  }

  private contactRow(r: ConversationRow): HTMLElement {
    const blocked = this.client.blocks.isBlocked(r.key);
    return h(
      'button',
      { class: `contact${r.key === this.open ? ' active' : ''}`, 'data-testid': 'contact', 'data-address': r.key, 'data-blocked': blocked, onclick: () => this.openConversation(r.key) },
      avatar(r.key, '', this.client.presence.onlineState(r.key)),
      this.rowBody(this.client.names.display(r.key), r, r.key, blocked ? 'Blocked' : null),
    );
  }

  private groupRow(r: ConversationRow): HTMLElement {
    const id = groupOf(r.key)!;
    const g = this.client.groups.cached(id);
    const invited = g?.standing === 'invited';
    const gone = g && g.standing !== 'active' && !invited;
    return h(
      'button',
      { class: `contact group${r.key === this.open ? ' active' : ''}`, 'data-testid': 'group-row', 'data-group': id, 'data-standing': g?.standing ?? 'active', onclick: () => this.openConversation(r.key) },
      g ? groupAvatar(g.info) : avatar(id),
      this.rowBody(g?.info.name ?? 'Group', r, null, invited ? 'Invitation' : gone ? 'You are no longer a member' : g?.info.activeCall ? 'Call in progress' : null),
    );
  }

  private rowBody(name: string, r: ConversationRow, title: string | null, note: string | null): HTMLElement {
    return h(
      'div',
      { class: 'body' },
      h('div', { class: 'row' }, h('span', { class: 'name', title: title ?? name }, name), h('span', { class: 'time' }, relativeTime(r.lastAt))),
      h(
        'div',
        { class: 'row' },
        h('span', { class: 'preview', 'data-testid': 'last-message' }, note ?? (r.lastText || 'No messages yet')),
        r.unread > 0 ? h('span', { class: 'badge', 'data-testid': 'unread' }, String(r.unread)) : null,
      ),
    );
  }

  openConversation(address: string): void {
    const key = conversationKey(address);
    this.open = key;
    this.typists.clear();
    const row = this.rows.get(key);
    if (row) row.unread = 0;
    this.panel = null;
    this.client.chat.setOpenConversation(key);
    this.el.classList.add('has-conv');
    this.renderContacts();
    this.renderRequests();
    this.renderConversation();
    const group = groupOf(key);
    // An invitation has no history to show until it is accepted.
    if (group && this.client.groups.cached(group)?.standing === 'invited') return;
    void this.client.chat
      .loadHistory(key)
      .then(() => this.client.chat.setOpenConversation(this.open))
      .catch(() => undefined);
  }

  private renderHeaderName(): void {
    const el = this.conv.querySelector<HTMLElement>('[data-testid=chat-peer]');
    if (el && this.open) el.textContent = this.client.names.display(this.open);
  }

  private renderHeaderPresence(): void {
    const sub = this.conv.querySelector<HTMLElement>('[data-testid=peer-presence]');
    if (!sub || !this.open || groupOf(this.open)) return;
    const p = this.client.presence.get(this.open);
    sub.className = `sub${p?.online ? ' online' : ''}`;
    sub.textContent = p?.online === null ? '—' : p?.online ? 'Online' : p?.lastSeen ? `Last seen ${relativeTime(p.lastSeen)}` : 'Offline';
  }

  private renderConversation(): void {
    this.rendered.clear();
    this.composer?.destroy();
    this.composer = null;
    const key = this.open;
    if (!key) {
      this.messagesEl = null;
      this.typingEl = null;
      this.conv.replaceChildren(
        h('div', { class: 'conv-empty' }, h('div', {}, h('div', { class: 'logo', style: 'opacity:.9' }, icon('chat')), h('h2', {}, 'Your messages'), h('p', {}, 'Pick a conversation, add a wallet address or start a group.'))),
      );
      this.conv.querySelector('.logo svg')?.setAttribute('stroke', '#fff');
      return;
    }
    const group = groupOf(key);
    this.messagesEl = h('div', { class: 'messages', 'data-testid': 'messages' });
    this.typingEl = h('div', { class: 'typing', 'data-testid': 'typing', hidden: true });
    this.renderTyping();
    const parts: HTMLElement[] = [group ? h('header', { class: 'conv-head', 'data-testid': 'group-header' }) : contactHeader(this.client, key, this.head)];
    const banner = group ? groupBanner(this.client, group, this.head) : requestBanner(this.client, key);
    if (banner) parts.push(banner);
    parts.push(this.messagesEl, this.typingEl);
    const g = group ? this.client.groups.cached(group) : null;
    const canWrite = group ? g?.standing === 'active' : !this.client.blocks.isBlocked(key);
    if (canWrite) {
      this.composer = new Composer(this.client, key);
      parts.push(this.composer.el);
    }
    this.conv.replaceChildren(h('div', { class: 'conv-main' }, ...parts));
    if (group) {
      if (g) this.renderGroupHeader(g);
      if (this.panel) this.conv.append(this.panel.el);
    } else this.renderHeaderPresence();
    for (const e of this.client.chat.messages(key)) this.renderMessage(e, false);
    this.scrollDown();
  }

  private renderGroupHeader(g: GroupState): void {
    const head = this.conv.querySelector<HTMLElement>('[data-testid=group-header]');
    if (!head) return;
    head.replaceChildren(...groupHeaderParts(this.client, g, this.head));
    const banner = this.conv.querySelector('[data-testid=group-banner]');
    const fresh = groupBanner(this.client, g.info.id, this.head);
    if (banner && fresh) banner.replaceWith(fresh);
    else if (banner) banner.remove();
    else if (fresh) head.after(fresh);
    // Membership changed under an open conversation (removed, or an invitation accepted elsewhere).
    if ((this.composer !== null) !== (g.standing === 'active')) this.renderConversation();
  }

  private refreshOpenGroup(): void {
    const id = this.open ? groupOf(this.open) : null;
    const g = id ? this.client.groups.cached(id) : null;
    if (g) this.renderGroupHeader(g);
  }

  private togglePanel(): void {
    const id = this.open ? groupOf(this.open) : null;
    if (this.panel || !id) {
      this.panel?.el.remove();
      this.panel = null;
      return;
    }
    this.panel = new GroupPanel(this.client, id, () => this.togglePanel());
    this.conv.append(this.panel.el);
  }

  private renderTyping(): void {
    const el = this.typingEl;
    if (!el) return;
    const names = [...this.typists];
    el.hidden = names.length === 0;
    const text = this.open && groupOf(this.open) ? `${names.map((a) => this.client.names.display(a)).join(', ')} ${names.length > 1 ? 'are' : 'is'} typing…` : 'typing…';
    el.replaceChildren(h('span', { class: 'dots' }, h('i'), h('i'), h('i')), text);
  }

  private renderMessage(e: ChatEntry, live: boolean): void {
    const list = this.messagesEl;
    if (!list) return;
    const key = e.clientId + e.from;
    const el = messageElement(this.client, e);
    const old = this.rendered.get(key);
    if (old) {
      // Keep the audio element (and its playback) when only the status changed.
      const oldAudio = old.querySelector('audio');
      if (oldAudio) el.querySelector('audio')?.replaceWith(oldAudio);
      const details = old.nextElementSibling?.classList.contains('receipt-details') ? old.nextElementSibling : null;
      old.replaceWith(el);
      if (details) el.after(details);
      this.rendered.set(key, el);
      return;
    }
    this.rendered.set(key, el);
    const all = this.client.chat.messages(e.peer);
    const idx = all.indexOf(e);
    const next = all.slice(idx + 1).find((x) => this.rendered.has(x.clientId + x.from));
    const nextEl = next ? this.rendered.get(next.clientId + next.from)! : null;
    const prev = idx > 0 ? all[idx - 1] : undefined;
    const nodes: Node[] = [];
    if (!prev || dayOf(prev.createdAt) !== dayOf(e.createdAt)) nodes.push(h('div', { class: 'day' }, dayOf(e.createdAt)));
    nodes.push(el);
    if (nextEl) {
      const before = nextEl.previousElementSibling?.classList.contains('day') && nextEl.previousElementSibling.textContent === dayOf(e.createdAt) ? nextEl.previousElementSibling : nextEl;
      for (const n of nodes) list.insertBefore(n, before);
    } else list.append(...nodes);
    if (live || !nextEl) this.scrollDown();
  }

  private scrollDown(): void {
    const list = this.messagesEl;
    if (list) requestAnimationFrame(() => (list.scrollTop = list.scrollHeight));
  }
}

function preview(kind: string, text: string | null, mine: boolean): string {
  const body = kind === 'text' ? (text ?? '') : kind === 'audio' ? 'Voice note' : 'Video note';
  return mine ? `You: ${body}` : body;
}

function label(state: string): string {
  switch (state) {
    case 'open':
      return 'Connected';
    case 'connecting':
      return 'Connecting…';
    case 'reconnecting':
      return 'Reconnecting…';
    case 'auth-required':
      return 'Sign-in required';
    case 'closed':
      return 'Offline';
    default:
      return state;
  }
}

