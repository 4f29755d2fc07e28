import { normalizeAddress, type BlockRtcClient, type ChatEntry, type Contact } from '../sdk/index.ts';
import { avatar, dayOf, h, icon, relativeTime, shortAddress, tick, timeOf, toast } from './ui.ts';

interface ContactRow {
  address: string;
  lastText: string;
  lastAt: string | null;
  unread: number;
}

/** Sidebar (me, add contact, contacts) and the open conversation. */
export class ChatView {
  private readonly offs: (() => void)[] = [];
  private readonly contacts = new Map<string, ContactRow>();
  private open: string | null = null;
  private readonly el: HTMLElement;
  private readonly list: HTMLElement;
  private readonly conv: HTMLElement;
  private readonly status: HTMLElement;
  private messagesEl: HTMLElement | null = null;
  private typingEl: HTMLElement | null = null;
  private readonly rendered = new Map<string, HTMLElement>();
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
        this.openConversation(c.address);
      } catch (err) {
        addError.textContent = (err as Error).message;
      }
    };
    input.addEventListener('keydown', (e) => e.key === 'Enter' && void add());
    this.list = h('div', { class: 'contacts', 'data-testid': 'contacts' });
    this.conv = h('section', { class: 'conversation' });
    const sidebar = h(
      'aside',
      { class: 'sidebar' },
      h(
        'div',
        { class: 'me' },
        avatar(me),
        h('div', { class: 'who' }, h('strong', { 'data-testid': 'me-address', title: me }, shortAddress(me)), this.status),
        h('button', { class: 'icon-btn', title: 'Sign out', 'aria-label': 'Sign out', 'data-testid': 'sign-out', onclick: onSignOut }, icon('logout')),
      ),
      h('div', { class: 'add-contact' }, input, h('button', { class: 'btn btn-primary', 'data-testid': 'add-contact-btn', onclick: () => void add() }, 'Add')),
      addError,
      h('div', { class: 'section-title' }, 'Conversations'),
      this.list,
    );
    this.el = h('div', { class: 'app', 'data-testid': 'main' }, sidebar, this.conv);
    root.replaceChildren(this.el);
    this.renderContacts();
    this.renderConversation();

    const { chat, presence, engine } = client;
    this.offs.push(
      engine.on('state', (s) => {
        this.status.dataset.state = s;
        this.status.textContent = label(s);
      }),
      chat.on('message', ({ entry, live }) => this.onMessage(entry, live)),
      chat.on('update', ({ entry }) => this.onUpdate(entry)),
      chat.on('typing', ({ peer, typing }) => {
        if (peer === this.open && this.typingEl) this.typingEl.hidden = !typing;
      }),
      presence.on('change', () => {
        this.renderContacts();
        this.renderHeaderPresence();
      }),
      client.names.on('change', ({ address }) => {
        if (this.contacts.has(address)) this.renderContacts();
        if (address === this.open) this.renderHeaderName();
      }),
      engine.signal.on('signal.open', ({ reconnect }) => reconnect && void this.loadContacts()),
    );
  }

  destroy(): void {
    for (const off of this.offs) off();
    this.client.chat.setOpenConversation(null);
    this.recorder?.stop();
    this.el.remove();
  }

  async loadContacts(): Promise<void> {
    const list = await this.client.chat.listContacts();
    for (const c of list) this.upsertContact(c);
  }

  private upsertContact(c: Contact): void {
    const row = this.contacts.get(c.address) ?? { address: c.address, lastText: '', lastAt: null, unread: 0 };
    if (c.lastMessage && (!row.lastAt || c.lastMessage.createdAt >= row.lastAt)) {
      row.lastAt = c.lastMessage.createdAt;
      row.lastText = preview(c.lastMessage.kind, c.lastMessage.text, c.lastMessage.from === this.client.address);
    }
    row.unread = c.address === this.open ? 0 : c.unread;
    this.contacts.set(c.address, row);
    this.client.presence.set(c.presence);
    this.renderContacts();
  }

  private onMessage(entry: ChatEntry, live: boolean): void {
    let row = this.contacts.get(entry.peer);
    if (!row) {
      row = { address: entry.peer, lastText: '', lastAt: null, unread: 0 };
      this.contacts.set(entry.peer, row);
      void this.client.presence.query([entry.peer]).catch(() => undefined);
    } else if (live && !entry.outgoing && this.client.presence.isUnknown(entry.peer)) {
      // A message from someone whose presence was unknown: they share it with us now.
      void this.client.presence.query([entry.peer]).catch(() => undefined);
    }
    if (!row.lastAt || entry.createdAt >= row.lastAt) {
      row.lastAt = entry.createdAt;
      row.lastText = preview(entry.kind, entry.text, entry.outgoing);
    }
    if (live && !entry.outgoing && !entry.readAt && entry.peer !== this.open) row.unread++;
    this.renderContacts();
    if (entry.peer === this.open) this.renderMessage(entry, live);
  }

  private onUpdate(entry: ChatEntry): void {
    if (entry.peer !== this.open) return;
    this.renderMessage(entry, false);
  }

  private renderContacts(): void {
    const rows = [...this.contacts.values()].sort((a, b) => (b.lastAt ?? '').localeCompare(a.lastAt ?? ''));
    this.client.names.want(rows.map((r) => r.address));
    if (rows.length === 0) {
      this.list.replaceChildren(h('div', { class: 'empty-contacts' }, 'No conversations yet.', h('br'), 'Add a wallet address above to start chatting.'));
      return;
    }
    this.list.replaceChildren(
      ...rows.map((r) =>
        h(
          'button',
          { class: `contact${r.address === this.open ? ' active' : ''}`, 'data-testid': 'contact', 'data-address': r.address, onclick: () => this.openConversation(r.address) },
          avatar(r.address, '', this.client.presence.onlineState(r.address)),
          h(
            'div',
            { class: 'body' },
            h('div', { class: 'row' }, h('span', { class: 'name', title: r.address }, this.client.names.display(r.address)), h('span', { class: 'time' }, relativeTime(r.lastAt))),
            h('div', { class: 'row' }, h('span', { class: 'preview', 'data-testid': 'last-message' }, r.lastText || 'No messages yet'), r.unread > 0 ? h('span', { class: 'badge', 'data-testid': 'unread' }, String(r.unread)) : null),
          ),
        ),
      ),
    );
  }

  openConversation(address: string): void {
    const peer = normalizeAddress(address);
    this.open = peer;
    const row = this.contacts.get(peer);
    if (row) row.unread = 0;
    this.client.chat.setOpenConversation(peer);
    this.el.classList.add('has-conv');
    this.renderContacts();
    this.renderConversation();
    void this.client.chat
      .loadHistory(peer)
      .then(() => this.client.chat.setOpenConversation(peer))
      .catch(() => undefined);
  }

  private renderHeaderName(): void {
    const el = this.conv.querySelector<HTMLElement>('[data-testid=chat-peer]');
    if (el && this.open) el.textContent = this.client.names.display(this.open);
  }

  private renderHeaderPresence(): void {
    const sub = this.conv.querySelector<HTMLElement>('[data-testid=peer-presence]');
    if (!sub || !this.open) return;
    const p = this.client.presence.get(this.open);
    sub.className = `sub${p?.online ? ' online' : ''}`;
    sub.textContent = p?.online === null ? '—' : p?.online ? 'Online' : p?.lastSeen ? `Last seen ${relativeTime(p.lastSeen)}` : 'Offline';
  }

  private renderConversation(): void {
    this.rendered.clear();
    const peer = this.open;
    if (!peer) {
      this.messagesEl = null;
      this.typingEl = null;
      this.conv.replaceChildren(
        h('div', { class: 'conv-empty' }, h('div', {}, h('div', { class: 'logo', style: 'opacity:.9' }, icon('chat')), h('h2', {}, 'Your messages'), h('p', {}, 'Pick a conversation or add a wallet address to start one.'))),
      );
      const svg = this.conv.querySelector('.logo svg');
      svg?.setAttribute('stroke', '#fff');
      return;
    }
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
    this.messagesEl = h('div', { class: 'messages', 'data-testid': 'messages' });
    this.typingEl = h('div', { class: 'typing', 'data-testid': 'typing', hidden: true }, h('span', { class: 'dots' }, h('i'), h('i'), h('i')), 'typing…');
    const head = h(
      'header',
      { class: 'conv-head' },
      h('button', { class: 'icon-btn back', title: 'Back', 'aria-label': 'Back', onclick: () => this.el.classList.remove('has-conv') }, icon('back')),
      avatar(peer),
      h('div', { class: 'who' }, h('strong', { 'data-testid': 'chat-peer', title: peer }, this.client.names.display(peer)), h('div', { class: 'sub', 'data-testid': 'peer-presence' })),
      callBtn('audio'),
      callBtn('video'),
    );
    this.conv.replaceChildren(head, this.messagesEl, this.typingEl, this.composer(peer));
    this.renderHeaderPresence();
    for (const e of this.client.chat.messages(peer)) this.renderMessage(e, false);
    this.scrollDown();
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
    const mic: HTMLButtonElement = h('button', { class: 'round mic', title: 'Record a voice note', 'aria-label': 'Record a voice note', 'data-testid': 'record-btn', onclick: () => void this.toggleRecording(peer, mic, field, input) }, icon('mic'));
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
  private async toggleRecording(peer: string, button: HTMLButtonElement, field: HTMLElement, input: HTMLInputElement): Promise<void> {
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
    void field;
  }

  private renderMessage(e: ChatEntry, live: boolean): void {
    const list = this.messagesEl;
    if (!list) return;
    const key = e.clientId + e.from;
    const body: (Node | string)[] = [];
    if (e.kind === 'text') body.push(e.text ?? '');
    else if (e.attachment) {
      const audio = h('audio', { controls: true, preload: 'metadata', 'data-testid': 'voice-note' });
      void this.client.chat.attachmentUrl(e.attachment.id).then((url) => (audio.src = url), () => undefined);
      body.push(audio);
    }
    const meta = h('div', { class: 'meta' }, h('time', { datetime: e.createdAt }, timeOf(e.createdAt)), e.outgoing ? tick(e.status) : null);
    const el = h('div', { class: `msg ${e.outgoing ? 'out' : 'in'}`, 'data-testid': 'message', 'data-direction': e.outgoing ? 'out' : 'in', 'data-status': e.status, 'data-id': e.id ?? '' }, h('div', { class: 'text' }, ...body), meta);
    const old = this.rendered.get(key);
    if (old) {
      // Keep the audio element (and its playback) when only the status changed.
      const oldAudio = old.querySelector('audio');
      if (oldAudio) el.querySelector('audio')?.replaceWith(oldAudio);
      old.replaceWith(el);
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

/** Something typed into "add contact" that is a name rather than an address. */
function isEnsName(value: string): boolean {
  return !value.toLowerCase().startsWith('0x') && value.includes('.');
}
