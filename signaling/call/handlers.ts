import type { ResultMap } from '../../protocol/index.ts';
import type { Handlers } from '../ws/dispatch.ts';
import type { CallService } from './service.ts';

type CallRequest = Extract<keyof Handlers, `call.${string}`>;

/**
 * Call requests: lifecycle ones go to the call service; media ones are relayed to the SFU
 * node carrying the call, scoped by the service to the connection's own peer.
 */
export function callHandlers(calls: CallService): Pick<Handlers, CallRequest> {
  return {
    'call.start': (c, r) => calls.startCall(c, r),
    'call.accept': (c, r) => calls.accept(c, r),
    'call.reject': (c, r) => calls.reject(c, r),
    'call.cancel': (c, r) => calls.cancel(c, r),
    'call.join': (c, r) => calls.join(c, r),
    'call.leave': (c, r) => calls.leave(c, r),
    'call.history': (c, r) => calls.history(c, r),
    'call.turnCredentials': (c, r) => calls.turnCredentials(c, r),
    'call.createTransport': (c, r) => calls.media(c, r.callId, 'createTransport', { direction: r.direction }),
    'call.connectTransport': (c, r) => calls.media(c, r.callId, 'connectTransport', { transportId: r.transportId, dtlsParameters: r.dtlsParameters as never }),
    'call.restartIce': (c, r) => calls.media(c, r.callId, 'restartIce', { transportId: r.transportId }),
    'call.produce': (c, r) => calls.media(c, r.callId, 'produce', { transportId: r.transportId, kind: r.kind, rtpParameters: r.rtpParameters as never, source: r.source, paused: r.paused }),
    'call.pauseProducer': (c, r) => calls.media(c, r.callId, 'pauseProducer', { producerId: r.producerId, paused: r.paused }),
    'call.closeProducer': (c, r) => calls.media(c, r.callId, 'closeProducer', { producerId: r.producerId }),
    // mediasoup (server) and mediasoup-client describe the same RTP parameters with slightly
    // different literal unions (header extension URIs); the wire carries mediasoup's.
    'call.consume': (c, r) =>
      calls.media(c, r.callId, 'consume', { transportId: r.transportId, producerId: r.producerId, rtpCapabilities: r.rtpCapabilities as never }) as Promise<ResultMap['call.consume']>,
    'call.resumeConsumer': (c, r) => calls.media(c, r.callId, 'resumeConsumer', { consumerId: r.consumerId }),
    'call.setPreferredLayers': (c, r) =>
      calls.media(c, r.callId, 'setPreferredLayers', { consumerId: r.consumerId, spatialLayer: r.spatialLayer, ...(r.temporalLayer !== undefined ? { temporalLayer: r.temporalLayer } : {}) }),
  };
}
