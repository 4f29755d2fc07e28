/**
 * The message field of an open conversation (1:1 or group): Enter sends, typing is announced
 * (and its end, after 3 s without a key), the microphone records a voice note.
 */
import type { BlockRtcClient } from '../sdk/index.ts';
import { h, icon, toast } from './ui.ts';

const TYPING_IDLE_MS = 3000;

export class Composer {
  readonly el: HTMLElement;
  private readonly input: HTMLInputElement;
  private typingSent = false;
  private typingStop: ReturnType<typeof setTimeout> | null = null;
  private recorder: MediaRecorder | null = null;

  constructor(
    private readonly client: BlockRtcClient,
    /** The conversation key: an address or `g:<group id>`. */
    private readonly to: string,
  ) {
    this.input = h('input', { placeholder: 'Write a message…', 'data-testid': 'composer-input', autocomplete: 'off', 'aria-label': 'Message' });
    const input = this.input;
    const field = h('div', { class: 'field' }, input);
    input.addEventListener('keydown', (e) => e.key === 'Enter' && this.send());
    input.addEventListener('input', () => {
      if (!input.value) return this.stopTyping();
      if (!this.typingSent) {
        this.typingSent = true;
        client.chat.setTyping(to, true);
      }
      if (this.typingStop) clearTimeout(this.typingStop);
      this.typingStop = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
    });
    const mic: HTMLButtonElement = h('button', { class: 'round mic', title: 'Record a voice note', 'aria-label': 'Record a voice note', 'data-testid': 'record-btn', onclick: () => void this.toggleRecording(mic) }, icon('mic'));
    field.append(mic);
    this.el = h('div', { class: 'composer' }, field, h('button', { class: 'round send', title: 'Send', 'aria-label': 'Send', 'data-testid': 'send-btn', onclick: () => this.send() }, icon('send')));
  }

  /** The conversation closes: a recording stops (and is sent), typing is withdrawn. */
  destroy(): void {
    this.recorder?.stop();
    this.stopTyping();
  }

  private send(): void {
    const text = this.input.value.trim();
    if (!text) return;
    this.input.value = '';
    this.stopTyping();
    void this.client.chat.sendText(this.to, text);
  }

  private stopTyping(): void {
    if (this.typingStop) clearTimeout(this.typingStop);
    this.typingStop = null;
    if (this.typingSent) this.client.chat.setTyping(this.to, false);
    this.typingSent = false;
  }

  /** First click records, second click stops and sends. */
  private async toggleRecording(button: HTMLButtonElement): Promise<void> {
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
      indicator.replaceWith(this.input);
      const blob = new Blob(chunks, { type: (rec.mimeType || 'audio/webm').split(';')[0] });
      if (blob.size > 0) void this.client.chat.sendVoiceNote(this.to, blob).catch((err: unknown) => toast(`Voice note not sent: ${(err as Error).message}`));
    };
    this.recorder = rec;
    rec.start(250);
    button.classList.add('recording');
    button.replaceChildren(icon('stop'));
    this.input.replaceWith(indicator);
  }
}
