import type { Handlers } from '../ws/dispatch.ts';
import type { PresenceService } from './service.ts';

/** Contacts and presence requests, routed to the presence service. */
export function presenceHandlers(presence: PresenceService): Pick<Handlers, 'contacts.list' | 'contacts.add' | 'presence.query'> {
  return {
    'contacts.list': (c) => presence.listContacts(c),
    'contacts.add': (c, r) => presence.addContact(c, r),
    'presence.query': async (c, r) => ({ presence: await presence.query(c.address, r.addresses) }),
  };
}
