/**
 * Delivery to the connections of one user, wherever they are. A node subscribes to a user
 * while it holds one of that user's connections; publishing costs the same however many
 * nodes there are (per-user channels, sharded in a Redis Cluster).
 */
export interface Bus {
  /** Handler for everything published to users this node subscribes to. */
  onDeliver(handler: (user: string, payload: string) => void): void;
  subscribe(user: string): Promise<void>;
  unsubscribe(user: string): Promise<void>;
  publish(user: string, payload: string): Promise<void>;
  /**
   * Called when the node's subscriptions are back after its bus connection was lost: events
   * published meanwhile to the users it holds were not delivered.
   */
  onRecover(handler: () => void): void;
  close(): Promise<void>;
}

export interface Delivery {
  /** Connection that must not get the frame (the one that caused it), or ''. */
  skip: string;
  /** When the event was published (ms), for the delivery latency metric; 0 if untimed. */
  sentAt: number;
  /** The frame, serialised once by the publisher and written as-is to each connection. */
  frame: string;
}

/** Payload = `<skip> <sentAt>\n<frame JSON>`. */
export function encodeDelivery(frame: string, skip = '', sentAt = 0): string {
  return `${skip} ${sentAt}\n${frame}`;
}

export function decodeDelivery(payload: string): Delivery {
  const nl = payload.indexOf('\n');
  const sp = payload.indexOf(' ');
  return { skip: payload.slice(0, sp), sentAt: Number(payload.slice(sp + 1, nl)), frame: payload.slice(nl + 1) };
}

/**
 * Node-to-node notes on a user's channel (for the nodes holding that user, never written to
 * its sockets). A delivery payload starts with a connection id or a space, never with `!`.
 */
export const CONTROL_MARK = '!';
export function encodeControl(body: string): string {
  return CONTROL_MARK + body;
}
