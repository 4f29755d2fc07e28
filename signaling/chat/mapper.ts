import type { StoredMessage } from '../../db/messages.ts';
import type { ChatMessage } from '../../protocol/index.ts';

export function toWire(m: StoredMessage): ChatMessage {
  return {
    id: m.id.toString(),
    conversation: m.conversation,
    from: m.sender,
    to: m.recipient,
    clientId: m.clientId,
    kind: m.kind,
    text: m.body,
    attachment: m.attachment,
    createdAt: m.createdAt.toISOString(),
    deliveredAt: m.deliveredAt?.toISOString() ?? null,
    readAt: m.readAt?.toISOString() ?? null,
  };
}
