import { z } from 'zod';
import { address } from './common.ts';

export const presenceQuery = z.strictObject({
  type: z.literal('presence.query'),
  id: z.string().min(1).max(64),
  addresses: z.array(address).min(1).max(500),
});

export const contactsList = z.strictObject({
  type: z.literal('contacts.list'),
  id: z.string().min(1).max(64),
});

export const contactsAdd = z.strictObject({
  type: z.literal('contacts.add'),
  id: z.string().min(1).max(64),
  address,
});

export interface PresenceState {
  address: string;
  /**
   * null: unknown — the user does not share its presence with the asker (it has neither sent
   * the asker a message nor added the asker as a contact).
   */
  online: boolean | null;
  /** ISO time the user was last seen; null if never, online or unknown. */
  lastSeen: string | null;
}

export interface Contact {
  address: string;
  presence: PresenceState;
  lastMessage: { id: string; from: string; kind: string; text: string | null; createdAt: string } | null;
  unread: number;
}
