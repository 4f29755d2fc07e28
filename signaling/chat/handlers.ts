import type { Handlers } from '../ws/dispatch.ts';
import type { ChatService } from './service.ts';

/** The chat requests of the wire protocol, routed to the chat service. */
export function chatHandlers(chat: ChatService): Pick<Handlers, 'chat.send' | 'chat.history' | 'chat.sync' | 'chat.delivered' | 'chat.read' | 'chat.typing'> {
  return {
    'chat.send': (c, r) => chat.send(c, r),
    'chat.history': (c, r) => chat.history(c, r),
    'chat.sync': (c, r) => chat.sync(c, r),
    'chat.delivered': (c, r) => chat.delivered(c, r),
    'chat.read': (c, r) => chat.read(c, r),
    'chat.typing': (c, r) => chat.typing(c, r),
  };
}
