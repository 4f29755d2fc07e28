/**
 * One message of a conversation as an element: a bubble (with the sender's name in a group,
 * and "Read by N of M" under my own group messages), or a centred line for a group's system
 * message.
 */
import type { BlockRtcClient, ChatEntry } from '../sdk/index.ts';
import { systemText } from './group-ui.ts';
import { h, shortAddress, tick, timeOf, toast } from './ui.ts';

export function messageElement(client: BlockRtcClient, e: ChatEntry): HTMLElement {
  if (e.kind === 'system') {
    return h('div', { class: 'sys', 'data-testid': 'system-message', 'data-action': e.system?.action ?? '', 'data-id': e.id ?? '' }, systemText(e.system, client.address));
  }
  const body: (Node | string)[] = [];
  if (e.group && !e.outgoing) body.push(h('div', { class: 'msg-from', 'data-testid': 'message-from', title: e.from }, shortAddress(e.from)));
  if (e.kind === 'text') body.push(e.text ?? '');
  else if (e.attachment) {
    const audio = h('audio', { controls: true, preload: 'metadata', 'data-testid': 'voice-note' });
    void client.chat.attachmentUrl(e.attachment.id).then((url) => (audio.src = url), () => undefined);
    body.push(audio);
  }
  const meta = h('div', { class: 'meta' }, h('time', { datetime: e.createdAt }, timeOf(e.createdAt)), e.outgoing ? tick(e.status) : null);
  const el = h(
    'div',
    { class: `msg ${e.outgoing ? 'out' : 'in'}`, 'data-testid': 'message', 'data-direction': e.outgoing ? 'out' : 'in', 'data-status': e.status, 'data-id': e.id ?? '' },
    h('div', { class: 'text' }, ...body),
    meta,
  );
  if (e.group && e.outgoing && e.receipts) el.append(readBy(client, e));
  return el;
}

/** "Read by N of M"; a click asks who (group.receipts with details). */
function readBy(client: BlockRtcClient, e: ChatEntry): HTMLElement {
  const r = e.receipts!;
  const label = r.of === 0 ? 'No other members' : r.read > 0 || r.delivered === 0 ? `Read by ${r.read} of ${r.of}` : `Delivered to ${r.delivered} of ${r.of}`;
  const el = h('button', { class: 'read-by', 'data-testid': 'read-by', 'data-read': r.read, 'data-delivered': r.delivered, 'data-of': r.of, title: 'Who read it' }, label);
  el.addEventListener('click', () => {
    void client.chat.receiptDetails(e).then(
      (d) => {
        if (!d) return;
        const names = (list: string[] | undefined) => (list?.length ? list.map(shortAddress).join(', ') : 'nobody yet');
        // The answer also refreshed the counts, so the bubble may have been drawn again: find it.
        const bubble = document.querySelector(`[data-testid=message][data-id="${e.id}"]`);
        if (!bubble) return;
        if (bubble.nextElementSibling?.classList.contains('receipt-details')) bubble.nextElementSibling.remove();
        bubble.after(h('div', { class: 'receipt-details', 'data-testid': 'receipt-details' }, `Read: ${names(d.readBy)}`, h('br'), `Delivered: ${names(d.deliveredBy)}`));
      },
      (err: unknown) => toast(`Could not load receipts: ${(err as Error).message}`),
    );
  });
  return el;
}
