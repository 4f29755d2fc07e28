import type { EventMap, EventType } from './index.ts';

/**
 * A server event frame, serialised. Branded so that only `encodeEvent` makes one: a
 * misspelt event name or a payload of the wrong shape is a compile error, not a frame
 * the client silently ignores.
 */
export type EncodedEvent = string & { readonly __event: unique symbol };

/** The one way to write `{"ev":…,"data":…}`. */
export function encodeEvent<E extends EventType>(ev: E, data: EventMap[E]): EncodedEvent {
  return JSON.stringify({ ev, data }) as EncodedEvent;
}
