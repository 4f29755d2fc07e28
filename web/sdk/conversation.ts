/**
 * Conversation keys: a 1:1 conversation is keyed by the other party's address (checksummed),
 * a group's by `g:<group id>` (the server's conversation key for it). Every chat method that
 * takes a conversation accepts either.
 */
import { normalize } from './address.ts';

const GROUP_PREFIX = 'g:';

export function groupConversation(groupId: string): string {
  return `${GROUP_PREFIX}${groupId.toLowerCase()}`;
}

/** The group id of a group key, or null for a 1:1 key (an address). */
export function groupOf(key: string): string | null {
  return key.startsWith(GROUP_PREFIX) ? key.slice(GROUP_PREFIX.length).toLowerCase() : null;
}

/** The one spelling of a conversation key (INVALID_FIELDS for something that is neither). */
export function conversationKey(key: string): string {
  const group = groupOf(key.trim());
  return group ? groupConversation(group) : normalize(key);
}
