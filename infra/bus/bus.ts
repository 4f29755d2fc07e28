/**
 * Delivery to the connections of one user, wherever they are. A node subscribes to a user
 * while it holds one of that user's connections; publishing costs the same however many
 * nodes there are (per-user channels, sharded in a Redis Cluster).
 *
 * Groups have a channel each: a node subscribes to it while it holds a connection of any
 * active member, so one publish reaches every node that has members, whatever the group's
 * size, and each node writes to its own members' connections.
 */
export interface Bus {
  /** Handler for everything published to users this node subscribes to. */
  onDeliver(handler: (user: string, payload: string) => void): void;
  subscribe(user: string): Promise<void>;
  unsubscribe(user: string): Promise<void>;
  publish(user: string, payload: string): Promise<void>;
  /** Handler for everything published to groups this node subscribes to. */
  onGroupDeliver(handler: (group: string, payload: string) => void): void;
  subscribeGroup(group: string): Promise<void>;
  unsubscribeGroup(group: string): Promise<void>;
  publishGroup(group: string, payload: string): Promise<void>;
  /**
   * Called when the node's subscriptions are back after its bus connection was lost: events
   * published meanwhile to the users it holds were not delivered. Several handlers may be set.
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
 * A control payload, for the nodes rather than for clients (group subscriptions to change):
 * it starts with a byte no delivery starts with (one begins with a connection id or a space).
 */
const CONTROL = '\u0001';
export function encodeControl(body: string): string {
  return CONTROL + body;
}
/** The control body, or null for an ordinary delivery. */
export function controlBody(payload: string): string | null {
  return payload.startsWith(CONTROL) ? payload.slice(1) : null;
}

export interface GroupDelivery extends Delivery {
  /** A member none of whose connections gets the frame (typing: the typist), or ''. */
  except: string;
}

/** Group payload = `<skip> <sentAt> <except>\n<frame JSON>`. */
export function encodeGroupDelivery(frame: string, skip = '', sentAt = 0, except = ''): string {
  return `${skip} ${sentAt} ${except}\n${frame}`;
}

export function decodeGroupDelivery(payload: string): GroupDelivery {
  const nl = payload.indexOf('\n');
  const [skip = '', sentAt = '0', except = ''] = payload.slice(0, nl).split(' ');
  return { skip, sentAt: Number(sentAt), except, frame: payload.slice(nl + 1) };
}
