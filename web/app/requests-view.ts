/**
 * The Requests tab: conversations started by people I have not accepted, each with Accept,
 * Delete and Block. Clicking one opens it to read first (nothing tells the sender).
 */
import type { BlockRtcClient, MessageRequest } from '../sdk/index.ts';
import { avatar, h, relativeTime, shortAddress, toast } from './ui.ts';

export class RequestsView {
  readonly el: HTMLElement;

  constructor(
    private readonly client: BlockRtcClient,
    private readonly onOpen: (address: string) => void,
    private readonly isOpen: (address: string) => boolean,
  ) {
    this.el = h('div', { class: 'contacts requests', 'data-testid': 'requests' });
  }

  render(): void {
    const list = this.client.requests.requests;
    if (list.length === 0) {
      this.el.replaceChildren(h('div', { class: 'empty-contacts' }, 'No message requests.', h('br'), 'Messages from people you have not accepted land here.'));
      return;
    }
    this.el.replaceChildren(...list.map((r) => this.row(r)));
  }

  private row(r: MessageRequest): HTMLElement {
    const last = r.lastMessage;
    const text = last ? (last.kind === 'text' ? (last.text ?? '') : 'Voice note') : '';
    const act = (what: string, fn: () => Promise<unknown>) => (e: Event) => {
      e.stopPropagation();
      fn().catch((err: unknown) => toast(`${what} failed: ${(err as Error).message}`));
    };
    return h(
      'div',
      { class: `contact request${this.isOpen(r.address) ? ' active' : ''}`, 'data-testid': 'request', 'data-address': r.address, onclick: () => this.onOpen(r.address) },
      avatar(r.address),
      h(
        'div',
        { class: 'body' },
        h('div', { class: 'row' }, h('span', { class: 'name', title: r.address }, shortAddress(r.address)), h('span', { class: 'time' }, relativeTime(last?.createdAt ?? null))),
        h('div', { class: 'row' }, h('span', { class: 'preview', 'data-testid': 'request-preview' }, text)),
        h(
          'div',
          { class: 'request-actions' },
          h('button', { class: 'btn btn-primary small', 'data-testid': 'request-accept', onclick: act('Accept', () => this.client.requests.accept(r.address)) }, 'Accept'),
          h('button', { class: 'btn small', 'data-testid': 'request-delete', onclick: act('Delete', () => this.client.requests.delete(r.address)) }, 'Delete'),
          h('button', { class: 'btn btn-danger small', 'data-testid': 'request-block', onclick: act('Block', () => this.client.requests.block(r.address)) }, 'Block'),
        ),
      ),
    );
  }
}
