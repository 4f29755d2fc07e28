import { describe, expect, it } from 'vitest';
import { conversationKey, groupConversation, groupOf } from './conversation.ts';

describe('conversation keys', () => {
  it('a group key is g:<id in lower case>; an address key is the checksummed address', () => {
    const id = '0B3C4D5E-0000-4000-8000-00000000000A';
    expect(groupConversation(id)).toBe('g:0b3c4d5e-0000-4000-8000-00000000000a');
    expect(groupOf(groupConversation(id))).toBe(id.toLowerCase());
    expect(conversationKey(`g:${id}`)).toBe(groupConversation(id));
    expect(conversationKey('0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed')).toBe('0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed');
    expect(groupOf('0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed')).toBeNull();
  });

  it('refuses something that is neither', () => {
    expect(() => conversationKey('bob')).toThrow(expect.objectContaining({ code: 'INVALID_FIELDS' }));
  });
});
