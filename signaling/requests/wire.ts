import type { BlockStore } from '../../db/blocks.ts';
import type { ContactStore } from '../../db/contacts.ts';
import { encodeControl, type Bus } from '../../infra/bus/bus.ts';
import { LogThrottle, type Logger } from '../../infra/logger.ts';
import type { Connections } from '../connections.ts';
import { RelationCache } from './relations.ts';

/** The note on a user's channel: "forget what you know of this user towards <peer>". */
const NOTE = 'rel ';

/**
 * The node's relation cache, its misses read from PostgreSQL and its change notes carried
 * by the bus on the acting user's channel (so they reach exactly the nodes holding that user).
 */
export function createRelations(deps: { bus: Bus; connections: Connections; blocks: BlockStore; contacts: ContactStore; log: Logger }): RelationCache {
  const warnings = new LogThrottle();
  const relations = new RelationCache(
    (actor, peer) => deps.blocks.relation(actor, peer),
    (actor, peer) => {
      deps.bus.publish(actor, encodeControl(NOTE + peer)).catch((err: unknown) => {
        // Other nodes keep their entry until its TTL; this node already dropped its own.
        if (warnings.due()) deps.log.warn({ err: (err as Error)?.message ?? String(err), suppressed: warnings.takeHeld() }, 'relation change not published');
      });
    },
    (viewer, owners) => deps.contacts.acceptedBy(viewer, owners),
  );
  deps.connections.onControl((user, body) => {
    if (body.startsWith(NOTE)) relations.invalidate(user, body.slice(NOTE.length));
  });
  return relations;
}
