import { z } from 'zod';
import { address } from './common.ts';
import type { Contact } from './presence.ts';

/**
 * Message requests and blocks.
 *
 * A conversation is a *request* for its owner until the owner accepts the peer: the owner
 * has neither sent the peer a message nor added the peer (`contacts.add`) nor accepted it
 * here. Requests are listed by `requests.list`, never by `contacts.list`. Until accepted, the
 * peer gets no receipts, typing or presence from the owner.
 *
 * A blocked address can still send: its sends are acknowledged as usual, but nothing reaches
 * the blocker (live, `chat.sync`, `chat.history`, `contacts.list`, `requests.list`); its calls
 * never ring the blocker (they end as `missed`, like a call to someone offline).
 */

export const requestsList = z.strictObject({
  type: z.literal('requests.list'),
  id: z.string().min(1).max(64),
});

/** Moves the peer's conversation to the main list (`contacts.list`), like `contacts.add`. */
export const requestsAccept = z.strictObject({
  type: z.literal('requests.accept'),
  id: z.string().min(1).max(64),
  address,
});

/**
 * Removes the request from the owner's list and hides its messages from the owner for good
 * (the sender keeps its copy). A later message from the same address is a new request.
 */
export const requestsDelete = z.strictObject({
  type: z.literal('requests.delete'),
  id: z.string().min(1).max(64),
  address,
});

export const blocksList = z.strictObject({
  type: z.literal('blocks.list'),
  id: z.string().min(1).max(64),
});

/** Idempotent: blocking an address already blocked answers the existing entry. */
export const blocksAdd = z.strictObject({
  type: z.literal('blocks.add'),
  id: z.string().min(1).max(64),
  address,
});

/** Idempotent: `removed` is false when the address was not blocked. */
export const blocksRemove = z.strictObject({
  type: z.literal('blocks.remove'),
  id: z.string().min(1).max(64),
  address,
});

/** A request: the same shape as a contact of the main list. */
export type MessageRequest = Contact;

export interface BlockEntry {
  address: string;
  /** ISO time the block was made. */
  blockedAt: string;
}

/** To the blocker's other devices when its block list changes (the device that changed it gets the answer). */
export interface BlocksChangedEvent {
  address: string;
  blocked: boolean;
  at: string;
}

/** To the owner's other devices when a request was accepted or deleted on one of them. */
export interface RequestsChangedEvent {
  address: string;
  action: 'accepted' | 'deleted';
}
