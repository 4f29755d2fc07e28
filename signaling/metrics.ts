import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** All signaling metrics in one registry (one per process; tests may create several). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'blockrtc_' });
  const m = {
    registry,
    connections: new Gauge({ name: 'blockrtc_ws_connections', help: 'Open authenticated WebSocket connections', registers: [registry] }),
    connectionsTotal: new Counter({ name: 'blockrtc_ws_connections_total', help: 'WebSocket connections accepted', registers: [registry] }),
    framesIn: new Counter({ name: 'blockrtc_ws_frames_in_total', help: 'Client frames received', labelNames: ['type'] as const, registers: [registry] }),
    messagesIn: new Counter({ name: 'blockrtc_chat_messages_in_total', help: 'Chat messages stored', registers: [registry] }),
    messagesOut: new Counter({ name: 'blockrtc_chat_messages_out_total', help: 'Chat message events written to client connections', registers: [registry] }),
    deliveryLatency: new Histogram({
      name: 'blockrtc_chat_delivery_seconds',
      help: 'From a message being stored to its event being written to a recipient connection',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    commitBatch: new Histogram({
      name: 'blockrtc_chat_commit_batch_size',
      help: 'Messages per group commit',
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500],
      registers: [registry],
    }),
    commitSeconds: new Histogram({
      name: 'blockrtc_chat_commit_seconds',
      help: 'From sending a group-commit batch to its rows being durable',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    authFailures: new Counter({ name: 'blockrtc_auth_failures_total', help: 'Failed sign-ins and rejected tokens', labelNames: ['code'] as const, registers: [registry] }),
    rateLimited: new Counter({ name: 'blockrtc_rate_limited_total', help: 'Requests refused by a rate limit', labelNames: ['limit'] as const, registers: [registry] }),
    requestErrors: new Counter({ name: 'blockrtc_ws_request_errors_total', help: 'Requests answered with an error', labelNames: ['code'] as const, registers: [registry] }),
    busPublishes: new Counter({
      name: 'blockrtc_bus_publishes_total',
      help: 'Events published on the bus, by channel kind (a group message is one group publish whatever its size)',
      labelNames: ['channel'] as const,
      registers: [registry],
    }),
    groupChannels: new Gauge({ name: 'blockrtc_group_channels', help: 'Group channels this node subscribes to (it holds a connection of a member)', registers: [registry] }),
    draining: new Gauge({ name: 'blockrtc_draining', help: '1 while the node drains', registers: [registry] }),
  };
  return m;
}
export type Metrics = ReturnType<typeof createMetrics>;
