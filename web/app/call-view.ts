import type { BlockRtcClient, CallSession, IncomingCall, RemoteTrack } from '../sdk/index.ts';
import { avatar, duration, h, icon, toast } from './ui.ts';

interface Tile {
  el: HTMLElement;
  video: HTMLVideoElement;
  audio: HTMLAudioElement;
  address: string;
  peerId: string;
}

/** The incoming-call screen and the in-call screen, drawn into the overlay layer. */
export class CallView {
  private incomingEl: HTMLElement | null = null;
  private incomingId: string | null = null;

  constructor(
    private readonly client: BlockRtcClient,
    private readonly layer: HTMLElement,
  ) {
    const calls = client.calls;
    calls.on('incoming', (c) => this.showIncoming(c));
    calls.on('incoming-ended', ({ callId }) => {
      if (callId === this.incomingId) this.hideIncoming();
    });
    calls.on('session', (s) => new InCall(client, s, layer));
  }

  private showIncoming(c: IncomingCall): void {
    if (this.client.calls.current && !this.client.calls.current.ended) {
      // Already in a call: a second ring would cover it; the caller sees no answer.
      toast(`Missed call from ${this.client.names.display(c.from)} (you are in a call)`);
      return;
    }
    this.hideIncoming();
    this.incomingId = c.callId;
    const others = c.participants.filter((a) => a !== c.from && a !== this.client.address);
    const group = c.group ? (this.client.groups.cached(c.group)?.info.name ?? 'a group') : null;
    const act = async (accept: boolean) => {
      this.hideIncoming();
      try {
        if (accept) await this.client.calls.accept(c.callId);
        else await this.client.calls.reject(c.callId);
      } catch (err) {
        toast(`${accept ? 'Could not join' : 'Could not decline'}: ${(err as Error).message}`);
      }
    };
    this.incomingEl = h(
      'div',
      { class: 'incoming', 'data-testid': 'incoming-call', 'data-call-id': c.callId, role: 'dialog', 'aria-label': 'Incoming call' },
      h(
        'div',
        { class: 'incoming-card' },
        avatar(c.from, 'lg'),
        h('div', { class: 'kind' }, `Incoming ${c.kind} call`),
        h('div', { class: 'from', 'data-testid': 'incoming-from', title: c.from }, this.client.names.display(c.from)),
        h('div', { class: 'others', 'data-testid': 'incoming-group' }, group ? `in ${group}` : others.length ? `with ${others.map((a) => this.client.names.display(a)).join(', ')}` : ''),
        h(
          'div',
          { class: 'incoming-actions' },
          h('label', {}, h('button', { class: 'action reject', 'data-testid': 'reject-call', 'aria-label': 'Decline', onclick: () => void act(false) }, icon('phone')), 'Decline'),
          h('label', {}, h('button', { class: 'action accept', 'data-testid': 'accept-call', 'aria-label': 'Accept', onclick: () => void act(true) }, icon(c.kind === 'video' ? 'video' : 'phone')), 'Accept'),
        ),
        // A group's call keeps running for its members: "Later" only stops the ringing here,
        // and the group's conversation offers to join while the call lasts.
        group ? h('button', { class: 'later', 'data-testid': 'dismiss-call', onclick: () => this.hideIncoming() }, 'Later') : null,
      ),
    );
    this.layer.append(this.incomingEl);
  }

  private hideIncoming(): void {
    this.incomingEl?.remove();
    this.incomingEl = null;
    this.incomingId = null;
  }
}

/** One call on screen: tiles per remote peer, local picture-in-picture, controls. */
class InCall {
  private readonly tiles = new Map<string, Tile>();
  private readonly el: HTMLElement;
  private readonly grid: HTMLElement;
  private readonly timer: HTMLElement;
  private readonly status: HTMLElement;
  private readonly subtitle: HTMLElement;
  private readonly pip: HTMLElement;
  private readonly pipVideo: HTMLVideoElement;
  private readonly buttons: Record<'mic' | 'camera' | 'screen', HTMLButtonElement>;
  private readonly interval: ReturnType<typeof setInterval>;

  constructor(
    private readonly client: BlockRtcClient,
    private readonly session: CallSession,
    layer: HTMLElement,
  ) {
    const peers = session.participants.map((p) => p.address).filter((a) => a !== client.address);
    this.timer = h('span', { class: 'timer', 'data-testid': 'call-timer' }, '00:00');
    this.status = h('span', { class: 'status', 'data-testid': 'call-status' });
    this.subtitle = h('div', {});
    this.grid = h('div', { class: 'grid', 'data-testid': 'call-grid' });
    this.pipVideo = h('video', { autoplay: true, muted: true, playsInline: true, 'data-testid': 'local-video' });
    this.pip = h('div', { class: 'pip', 'data-testid': 'local-pip', 'data-video': 'off' }, avatar(client.address ?? '0x'), this.pipVideo, h('span', { class: 'you' }, 'You'));
    const ctl = (source: 'mic' | 'camera' | 'screen', on: 'mic' | 'video' | 'screen', off: 'micOff' | 'videoOff' | 'screen', labelText: string) => {
      const b: HTMLButtonElement = h('button', { class: 'ctl', 'data-testid': `toggle-${source}`, 'aria-label': labelText, title: labelText, 'aria-pressed': 'false', onclick: () => void this.toggle(source) }, icon(on));
      b.dataset.on = on;
      b.dataset.off = off;
      return b;
    };
    this.buttons = { mic: ctl('mic', 'mic', 'micOff', 'Mute'), camera: ctl('camera', 'video', 'videoOff', 'Camera'), screen: ctl('screen', 'screen', 'screen', 'Share screen') };
    const hangup = h('button', { class: 'ctl hangup', 'data-testid': 'hangup', 'aria-label': 'Hang up', title: 'Hang up', onclick: () => void session.leave() }, icon('phone'));
    this.el = h(
      'div',
      { class: 'call', 'data-testid': 'call-screen', 'data-call-id': session.callId, 'data-state': session.state, 'data-kind': session.kind },
      h(
        'div',
        { class: 'call-top' },
        h('div', { class: 'title' }, h('strong', {}, this.title(peers)), this.subtitle),
        this.status,
        this.timer,
      ),
      this.grid,
      this.pip,
      h('div', { class: 'controls' }, this.buttons.mic, this.buttons.camera, this.buttons.screen, hangup),
    );
    layer.append(this.el);
    this.renderPlaceholder();
    this.renderState();
    this.syncControls();
    const local = session.localTrack('camera');
    if (local) this.setLocal(local, session.isEnabled('camera'));
    this.renderSpeaker();

    session.on('state', () => {
      this.renderState();
      this.renderSpeaker();
    });
    session.on('connection', () => this.renderState());
    session.on('participants', () => this.renderPlaceholder());
    session.on('track-added', (t) => this.addTrack(t));
    session.on('track-removed', (t) => this.removeTrack(t));
    session.on('track-paused', (t) => this.pauseTrack(t));
    session.on('active-speaker', () => this.renderSpeaker());
    session.on('local-track', ({ source, track, enabled }) => {
      if (source === 'camera') this.setLocal(track, enabled);
      this.syncControls();
    });
    session.on('ended', ({ reason }) => {
      clearInterval(this.interval);
      for (const t of this.tiles.values()) {
        t.video.srcObject = null;
        t.audio.srcObject = null;
      }
      this.el.remove();
      if (reason !== 'left' && reason !== 'completed') toast(`Call ended (${reason})`);
    });
    this.interval = setInterval(() => this.tick(), 500);
    for (const t of session.remoteTracks) this.addTrack(t);
  }

  private title(peers: string[]): string {
    const group = this.session.group ? this.client.groups.cached(this.session.group) : null;
    if (group) return `${group.info.name} · group call`;
    return peers.length > 1 ? `Group call · ${peers.length + 1} people` : this.client.names.display(peers[0] ?? '');
  }

  private async toggle(source: 'mic' | 'camera' | 'screen'): Promise<void> {
    try {
      if (source === 'mic') await this.session.setMicEnabled(!this.session.isEnabled('mic'));
      else if (source === 'camera') await this.session.setCameraEnabled(!(this.session.isEnabled('camera') && this.session.localTrack('camera')));
      else if (this.session.localTrack('screen')) await this.session.stopScreenShare();
      else await this.session.startScreenShare();
    } catch (err) {
      toast((err as Error).message);
    }
    this.syncControls();
  }

  private syncControls(): void {
    const micOff = !this.session.localTrack('mic') || !this.session.isEnabled('mic');
    const camOff = !this.session.localTrack('camera') || !this.session.isEnabled('camera');
    const sharing = Boolean(this.session.localTrack('screen'));
    const set = (b: HTMLButtonElement, pressed: boolean, label: string) => {
      b.setAttribute('aria-pressed', String(pressed));
      b.title = label;
      b.setAttribute('aria-label', label);
      b.replaceChildren(icon((pressed ? b.dataset.off : b.dataset.on) as 'mic'));
    };
    set(this.buttons.mic, micOff, micOff ? 'Unmute' : 'Mute');
    set(this.buttons.camera, camOff, camOff ? 'Turn camera on' : 'Turn camera off');
    set(this.buttons.screen, sharing, sharing ? 'Stop sharing' : 'Share screen');
  }

  /** The speaker may be announced before this device knows its own peer id, so state changes re-check. */
  private renderSpeaker(): void {
    const speaker = this.session.activeSpeaker;
    for (const [key, tile] of this.tiles) tile.el.classList.toggle('speaking', key === speaker);
    this.pip.classList.toggle('speaking', speaker !== null && speaker === this.session.peerId);
  }

  private setLocal(track: MediaStreamTrack | null, enabled: boolean): void {
    if (track && (this.pipVideo.srcObject as MediaStream | null)?.getVideoTracks()[0] !== track) this.pipVideo.srcObject = new MediaStream([track]);
    this.pip.dataset.video = track && enabled ? 'on' : 'off';
  }

  private tileFor(t: { peerId: string; address: string; source: string }): Tile {
    const key = t.source === 'screen' ? `${t.peerId}:screen` : t.peerId;
    let tile = this.tiles.get(key);
    if (tile) return tile;
    const video = h('video', { autoplay: true, playsInline: true, muted: true });
    const audio = h('audio', { autoplay: true });
    const el = h(
      'div',
      { class: `tile${t.source === 'screen' ? ' screen' : ''}`, 'data-testid': 'tile', 'data-peer': t.peerId, 'data-address': t.address, 'data-video': 'off', 'data-audio': 'on' },
      h('div', { class: 'placeholder' }, avatar(t.address, 'xl'), h('span', {}, t.source === 'screen' ? 'Screen' : 'Camera off')),
      video,
      audio,
      h('div', { class: 'label' }, icon('micOff', 'muted-icon'), `${this.client.names.display(t.address)}${t.source === 'screen' ? ' · screen' : ''}`),
    );
    el.querySelector('.muted-icon')?.setAttribute('data-testid', 'tile-muted');
    tile = { el, video, audio, address: t.address, peerId: t.peerId };
    this.tiles.set(key, tile);
    if (key === this.session.activeSpeaker) el.classList.add('speaking');
    this.grid.querySelector('[data-testid=call-waiting]')?.remove();
    this.grid.append(el);
    this.layout();
    return tile;
  }

  private addTrack(t: RemoteTrack): void {
    const tile = this.tileFor(t);
    const stream = new MediaStream([t.track]);
    if (t.kind === 'video') {
      tile.video.srcObject = stream;
      tile.el.dataset.video = t.paused ? 'off' : 'on';
    } else {
      tile.audio.srcObject = stream;
      tile.el.dataset.audio = t.paused ? 'off' : 'on';
      // Autoplay can be refused until the user interacts; the click that accepted the call usually counts.
      void tile.audio.play().catch(() => undefined);
    }
  }

  private pauseTrack(t: RemoteTrack): void {
    const tile = this.tiles.get(t.source === 'screen' ? `${t.peerId}:screen` : t.peerId);
    if (!tile) return;
    if (t.kind === 'video') tile.el.dataset.video = t.paused ? 'off' : 'on';
    else tile.el.dataset.audio = t.paused ? 'off' : 'on';
  }

  private removeTrack(t: RemoteTrack): void {
    const key = t.source === 'screen' ? `${t.peerId}:screen` : t.peerId;
    const tile = this.tiles.get(key);
    if (!tile) return;
    if (t.kind === 'video') {
      tile.video.srcObject = null;
      tile.el.dataset.video = 'off';
    } else tile.audio.srcObject = null;
    // The tile goes when the peer has nothing left (left the call, or stopped sharing).
    const still = this.session.remoteTracks.some((r) => (r.source === 'screen' ? `${r.peerId}:screen` : r.peerId) === key);
    if (!still && (t.source === 'screen' || this.session.state !== 'reconnecting')) {
      tile.el.remove();
      this.tiles.delete(key);
      this.layout();
      this.renderPlaceholder();
    }
  }

  private renderPlaceholder(): void {
    if (this.tiles.size > 0) return;
    const others = this.session.participants.filter((p) => p.address !== this.client.address);
    const first = others[0]?.address ?? '0x';
    const text = this.session.state === 'ringing' ? 'Ringing…' : this.session.state === 'reconnecting' ? 'Reconnecting…' : 'Waiting for others to join…';
    this.grid.replaceChildren(h('div', { class: 'tile', 'data-testid': 'call-waiting', 'data-video': 'off' }, h('div', { class: 'placeholder' }, avatar(first, 'xl'), h('span', {}, text))));
    this.grid.style.setProperty('--cols', '1');
  }

  private layout(): void {
    const n = Math.max(1, this.tiles.size);
    this.grid.style.setProperty('--cols', String(n <= 1 ? 1 : n <= 4 ? 2 : n <= 9 ? 3 : 4));
    this.el.dataset.tiles = String(this.tiles.size);
  }

  private renderState(): void {
    const s = this.session.state;
    this.el.dataset.state = s;
    const ts = Object.values(this.session.transportState);
    const media = ts.includes('failed') ? 'failed' : ts.includes('disconnected') ? 'reconnecting' : ts.length > 0 && ts.every((x) => x === 'connected') ? 'connected' : 'connecting';
    const shown = s === 'reconnecting' ? 'reconnecting' : s === 'ringing' ? 'ringing' : s === 'joining' ? 'connecting' : media;
    this.status.dataset.state = shown;
    this.status.textContent = { connected: 'Connected', connecting: 'Connecting…', reconnecting: 'Reconnecting…', failed: 'Connection lost', ringing: 'Ringing…' }[shown] ?? shown;
    this.subtitle.textContent = this.session.kind === 'video' ? 'Video call' : 'Voice call';
    this.renderPlaceholderText();
  }

  private renderPlaceholderText(): void {
    const waiting = this.grid.querySelector('[data-testid=call-waiting] .placeholder span');
    if (waiting) waiting.textContent = this.session.state === 'ringing' ? 'Ringing…' : this.session.state === 'reconnecting' ? 'Reconnecting…' : 'Waiting for others to join…';
  }

  private tick(): void {
    const at = this.session.startedAt;
    this.timer.textContent = at ? duration(Date.now() - at) : '00:00';
  }
}
