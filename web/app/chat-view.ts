import { conversationKey, groupConversation, groupOf, type BlockRtcClient, type ChatEntry, type Contact, type GroupState } from '../sdk/index.ts';
import { openCreateGroup } from './group-dialog.ts';
import { GroupPanel } from './group-panel.ts';
import { groupAvatar, systemText, who } from './group-ui.ts';
import { messageElement } from './message-view.ts';
import { RequestsView } from './requests-view.ts';
import { avatar, dayOf, h, icon, relativeTime, shortAddress, toast } from './ui.ts';

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
  private typingSent = false;
  private typingStop: ReturnType<typeof setTimeout> | null = null;
  private recorder: MediaRecorder | null = null;

  constructor(
    private readonly client: BlockRtcClient,
    root: HTMLElement,
    onSignOut: () => void,
  ) {
    const me = client.address ?? '';
    this.status = h('span', { class: 'status', 'data-testid': 'conn-status', 'data-state': client.state }, label(client.state));
    const input = h('input', { placeholder: 'Add a wallet address (0x…)', 'data-testid': 'add-contact-input', spellcheck: false, autocomplete: 'off' });
    const addError = h('div', { class: 'add-error', 'data-testid': 'add-contact-error' });
    const add = async () => {
      addError.textContent = '';
      try {
        const c = await client.chat.addContact(input.value);
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
      groups.on('change', (g) => this.onGroup(g)),
      requests.on('change', () => this.renderRequests()),
      requests.on('resolved', ({ address, contact }) => {
        if (contact) this.upsertContact(contact);
        if (this.open === address) this.renderConversation();
      }),
      blocks.on('change', ({ address }) => {
        this.renderContacts();
        if (this.open === address) this.renderConversation();
      }),
      engine.signal.on('signal.open', ({ reconnect }) => reconnect && void this.loadContacts()),
      // The "join the call" banner of an open group depends on whether I am in that call.
      client.calls.on('session', () => this.refreshOpenGroup()),
      client.calls.on('session-ended', () => this.refreshOpenGroup()),
    );
  }

  destroy(): void {
    for (const off of this.offs) off();
    this.client.chat.setOpenConversation(null);
    this.recorder?.stop();
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
      row.lastText = entry.kind === 'system' ? systemText(entry.system, this.client.address) : entry.group && !entry.outgoing ? `${shortAddress(entry.from)}: ${preview(entry.kind, entry.text, false)}` : preview(entry.kind, entry.text, entry.outgoing);
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
      this.rowBody(shortAddress(r.key), r, r.key, blocked ? 'Blocked' : null),
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

  private renderHeaderPresence(): void {
    const sub = this.conv.querySelector<HTMLElement>('[data-testid=peer-presence]');
    if (!sub || !this.open || groupOf(this.open)) return;
    const p = this.client.presence.get(this.open);
    sub.className = `sub${p?.online ? ' online' : ''}`;
    sub.textContent = p?.online === null ? '—' : p?.online ? 'Online' : p?.lastSeen ? `Last seen ${relativeTime(p.lastSeen)}` : 'Offline';
  }

  private renderConversation(): void {
    this.rendered.clear();
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
    const parts: HTMLElement[] = [group ? h('header', { class: 'conv-head', 'data-testid': 'group-header' }) : this.contactHeader(key)];
    const banner = group ? this.groupBanner(group) : this.requestBanner(key);
    if (banner) parts.push(banner);
    parts.push(this.messagesEl, this.typingEl);
    const g = group ? this.client.groups.cached(group) : null;
    const canWrite = group ? g?.standing === 'active' : !this.client.blocks.isBlocked(key);
    if (canWrite) parts.push(this.composer(key));
    const main = h('div', { class: 'conv-main' }, ...parts);
    this.conv.replaceChildren(main);
    if (group) {
      if (g) this.renderGroupHeader(g);
      if (this.panel) this.conv.append(this.panel.el);
    } else this.renderHeaderPresence();
    for (const e of this.client.chat.messages(key)) this.renderMessage(e, false);
    this.scrollDown();
  }

  private contactHeader(peer: string): HTMLElement {
    const callBtn = (kind: 'audio' | 'video') =>
      h(
        'button',
        {
          class: 'call-btn',
          title: kind === 'audio' ? 'Voice call' : 'Video call',
          'aria-label': kind === 'audio' ? 'Voice call' : 'Video call',
          'data-testid': `call-${kind}`,
          onclick: () => void this.client.calls.start(peer, kind).catch((err: unknown) => toast(`Call failed: ${(err as Error).message}`)),
        },
        icon(kind === 'audio' ? 'phone' : 'video'),
      );
    const blocked = this.client.blocks.isBlocked(peer);
    const blockBtn = h(
      'button',
      {
        class: `btn small${blocked ? '' : ' btn-quiet'}`,
        'data-testid': 'block-toggle',
        'data-blocked': String(blocked),
        title: blocked ? 'Unblock: their messages and calls reach you again' : 'Block: nothing they send reaches you',
        onclick: () => {
          const action = blocked ? this.client.blocks.remove(peer) : this.client.blocks.add(peer);
          action.then(() => this.renderConversation()).catch((err: unknown) => toast(`${blocked ? 'Unblock' : 'Block'} failed: ${(err as Error).message}`));
        },
      },
      blocked ? 'Unblock' : 'Block',
    );
    return h(
      'header',
      { class: 'conv-head' },
      h('button', { class: 'icon-btn back', title: 'Back', 'aria-label': 'Back', onclick: () => this.el.classList.remove('has-conv') }, icon('back')),
      avatar(peer),
      h('div', { class: 'who' }, h('strong', { 'data-testid': 'chat-peer', title: peer }, shortAddress(peer)), h('div', { class: 'sub', 'data-testid': 'peer-presence' })),
      blockBtn,
      blocked ? null : callBtn('audio'),
      blocked ? null : callBtn('video'),
    );
  }

  private renderGroupHeader(g: GroupState): void {
    const head = this.conv.querySelector<HTMLElement>('[data-testid=group-header]');
    if (!head) return;
    const id = g.info.id;
    const active = g.standing === 'active';
    const callBtn = (kind: 'audio' | 'video') =>
      h(
        'button',
        {
          class: 'call-btn',
          title: kind === 'audio' ? 'Group voice call' : 'Group video call',
          'aria-label': kind === 'audio' ? 'Group voice call' : 'Group video call',
          'data-testid': `group-call-${kind}`,
          onclick: () => void this.client.groups.call(id, kind).catch((err: unknown) => toast(`Call failed: ${(err as Error).message}`)),
        },
        icon(kind === 'audio' ? 'phone' : 'video'),
      );
    const sub = g.standing === 'invited' ? 'You are invited' : active ? `${g.info.memberCount} member${g.info.memberCount === 1 ? '' : 's'}${g.role === 'admin' ? ' · you are an admin' : ''}` : 'You are no longer a member';
    head.replaceChildren(
      h('button', { class: 'icon-btn back', title: 'Back', 'aria-label': 'Back', onclick: () => this.el.classList.remove('has-conv') }, icon('back')),
      groupAvatar(g.info),
      h('button', { class: 'who group-who', 'data-testid': 'group-members-btn', title: 'Members', onclick: () => this.togglePanel(id) }, h('strong', { 'data-testid': 'group-name' }, g.info.name), h('div', { class: 'sub', 'data-testid': 'group-sub' }, sub)),
      ...(active ? [callBtn('audio'), callBtn('video')] : []),
    );
    const banner = this.conv.querySelector('[data-testid=group-banner]');
    const fresh = this.groupBanner(id);
    if (banner && fresh) banner.replaceWith(fresh);
    else if (banner) banner.remove();
    else if (fresh) head.after(fresh);
    // Membership changed under an open conversation (removed, or an invitation accepted elsewhere).
    const hasComposer = this.conv.querySelector('.composer') !== null;
    if (hasComposer !== active) this.renderConversation();
  }

  private refreshOpenGroup(): void {
    const id = this.open ? groupOf(this.open) : null;
    const g = id ? this.client.groups.cached(id) : null;
    if (g) this.renderGroupHeader(g);
  }

  private togglePanel(groupId: string): void {
    if (this.panel) {
      this.panel.el.remove();
      this.panel = null;
      return;
    }
    this.panel = new GroupPanel(this.client, groupId, () => this.togglePanel(groupId));
    this.conv.append(this.panel.el);
  }

  /** An invitation to answer, or a group call to join late. */
  private groupBanner(groupId: string): HTMLElement | null {
    const g = this.client.groups.cached(groupId);
    if (!g) return null;
    if (g.standing === 'invited') {
      const answer = (accept: boolean) => () => {
        const p = accept ? this.client.groups.accept(groupId) : this.client.groups.decline(groupId);
        p.then(() => this.openConversation(groupConversation(groupId))).catch((err: unknown) => toast(`${accept ? 'Joining' : 'Declining'} failed: ${(err as Error).message}`));
      };
      return h(
        'div',
        { class: 'banner', 'data-testid': 'group-banner' },
        h('span', {}, `${who(g.info.createdBy, this.client.address)} invited you to “${g.info.name}”.`),
        h('button', { class: 'btn btn-primary small', 'data-testid': 'group-accept', onclick: answer(true) }, 'Join'),
        h('button', { class: 'btn small', 'data-testid': 'group-decline', onclick: answer(false) }, 'Decline'),
      );
    }
    const call = g.info.activeCall;
    if (g.standing !== 'active' || !call || this.client.calls.session(call.callId)) return null;
    return h(
      'div',
      { class: 'banner call-banner', 'data-testid': 'group-banner' },
      h('span', {}, `${who(call.startedBy, this.client.address)} started a ${call.kind === 'video' ? 'video' : 'voice'} call.`),
      h('button', { class: 'btn btn-primary small', 'data-testid': 'join-group-call', onclick: () => void this.client.groups.joinCall(groupId).catch((err: unknown) => toast(`Could not join: ${(err as Error).message}`)) }, 'Join call'),
    );
  }

  /** A conversation opened from the Requests tab: answer it here too. */
  private requestBanner(peer: string): HTMLElement | null {
    if (!this.client.requests.has(peer)) return null;
    const act = (what: string, fn: () => Promise<unknown>) => () => void fn().catch((err: unknown) => toast(`${what} failed: ${(err as Error).message}`));
    return h(
      'div',
      { class: 'banner', 'data-testid': 'request-banner' },
      h('span', {}, 'This is a message request: they will not see that you read it until you accept.'),
      h('button', { class: 'btn btn-primary small', 'data-testid': 'request-banner-accept', onclick: act('Accept', () => this.client.requests.accept(peer)) }, 'Accept'),
      h('button', { class: 'btn small', onclick: act('Delete', () => this.client.requests.delete(peer)) }, 'Delete'),
      h('button', { class: 'btn btn-danger small', onclick: act('Block', () => this.client.requests.block(peer)) }, 'Block'),
    );
  }

  private renderTyping(): void {
    const el = this.typingEl;
    if (!el) return;
    const names = [...this.typists];
    el.hidden = names.length === 0;
    const text = this.open && groupOf(this.open) ? `${names.map(shortAddress).join(', ')} ${names.length > 1 ? 'are' : 'is'} typing…` : 'typing…';
    el.replaceChildren(h('span', { class: 'dots' }, h('i'), h('i'), h('i')), text);
  }

  private composer(peer: string): HTMLElement {
    const input = h('input', { placeholder: 'Write a message…', 'data-testid': 'composer-input', autocomplete: 'off', 'aria-label': 'Message' });
    const field = h('div', { class: 'field' }, input);
    const send = () => {
      const text = input.value.trim();
      if (!text) return;
      input.value = '';
      this.stopTyping(peer);
      void this.client.chat.sendText(peer, text);
    };
    input.addEventListener('keydown', (e) => e.key === 'Enter' && send());
    input.addEventListener('input', () => {
      if (!input.value) return this.stopTyping(peer);
      if (!this.typingSent) {
        this.typingSent = true;
        this.client.chat.setTyping(peer, true);
      }
      if (this.typingStop) clearTimeout(this.typingStop);
      this.typingStop = setTimeout(() => this.stopTyping(peer), 3000);
    });
    const mic: HTMLButtonElement = h('button', { class: 'round mic', title: 'Record a voice note', 'aria-label': 'Record a voice note', 'data-testid': 'record-btn', onclick: () => void this.toggleRecording(peer, mic, input) }, icon('mic'));
    field.append(mic);
    return h('div', { class: 'composer' }, field, h('button', { class: 'round send', title: 'Send', 'aria-label': 'Send', 'data-testid': 'send-btn', onclick: send }, icon('send')));
  }

  private stopTyping(peer: string): void {
    if (this.typingStop) clearTimeout(this.typingStop);
    this.typingStop = null;
    if (this.typingSent) this.client.chat.setTyping(peer, false);
    this.typingSent = false;
  }

  /** First click records, second click stops and sends. */
  private async toggleRecording(peer: string, button: HTMLButtonElement, input: HTMLInputElement): Promise<void> {
    if (this.recorder) {
      this.recorder.stop();
      return;
    }
    let stream: MediaStream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch {
      toast('Microphone not available');
      return;
    }
    const mime = ['audio/webm;codecs=opus', 'audio/ogg;codecs=opus', 'audio/mp4'].find((m) => MediaRecorder.isTypeSupported(m)) ?? '';
    const rec = new MediaRecorder(stream, mime ? { mimeType: mime } : {});
    const chunks: Blob[] = [];
    const started = Date.now();
    const indicator = h('div', { class: 'rec', 'data-testid': 'recording' }, 'Recording 0:00');
    const timer = setInterval(() => {
      const s = Math.floor((Date.now() - started) / 1000);
      indicator.textContent = `Recording ${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
    }, 250);
    rec.ondataavailable = (e) => e.data.size && chunks.push(e.data);
    rec.onstop = () => {
      clearInterval(timer);
      stream.getTracks().forEach((t) => t.stop());
      this.recorder = null;
      button.classList.remove('recording');
      button.replaceChildren(icon('mic'));
      indicator.replaceWith(input);
      const blob = new Blob(chunks, { type: (rec.mimeType || 'audio/webm').split(';')[0] });
      if (blob.size > 0) void this.client.chat.sendVoiceNote(peer, blob).catch((err: unknown) => toast(`Voice note not sent: ${(err as Error).message}`));
    };
    this.recorder = rec;
    rec.start(250);
    button.classList.add('recording');
    button.replaceChildren(icon('stop'));
    input.replaceWith(indicator);
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
