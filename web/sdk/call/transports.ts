/**
 * The send and recv transports: wires mediasoup-client's transport events to signaling
 * requests. A transport of a replaced join (isCurrent() false) no longer reports its state
 * or restarts ICE; its session has moved on to new transports.
 */
import type { Device, types } from 'mediasoup-client';
import type { RequestInput, RequestType, ResultMap, TransportResult } from '../../../protocol/index.ts';
import type { MediaSource, TransportDirection } from './types.ts';

/** A signaling request as the session makes it (MEDIA_REJOIN answers start a rejoin). */
export type CallRequest = <T extends RequestType>(type: T, payload: RequestInput<T>, opts?: { timeoutMs?: number }) => Promise<ResultMap[T]>;

export interface TransportContext {
  callId: string;
  request: CallRequest;
  iceServers: RTCIceServer[];
  iceTransportPolicy?: RTCIceTransportPolicy | undefined;
  /** False once a newer join replaced the one that created the transport. */
  isCurrent(): boolean;
  onConnectionState(direction: TransportDirection, state: RTCPeerConnectionState): void;
  ice: IceRestarter;
}

export function openTransport(device: Device, direction: TransportDirection, info: TransportResult, ctx: TransportContext): types.Transport {
  const params: types.TransportOptions = {
    id: info.id,
    iceParameters: info.iceParameters,
    iceCandidates: info.iceCandidates,
    dtlsParameters: info.dtlsParameters,
    iceServers: ctx.iceServers,
    ...(ctx.iceTransportPolicy ? { iceTransportPolicy: ctx.iceTransportPolicy } : {}),
  };
  const t = direction === 'send' ? device.createSendTransport(params) : device.createRecvTransport(params);
  t.on('connect', ({ dtlsParameters }, callback, errback) => {
    ctx.request('call.connectTransport', { callId: ctx.callId, transportId: t.id, dtlsParameters }).then(
      () => callback(),
      (e: unknown) => errback(e as Error),
    );
  });
  if (direction === 'send') {
    t.on('produce', ({ kind, rtpParameters, appData }, callback, errback) => {
      const source = (appData.source as MediaSource | undefined) ?? (kind === 'audio' ? 'mic' : 'camera');
      ctx.request('call.produce', { callId: ctx.callId, transportId: t.id, kind, rtpParameters, source, paused: appData.paused === true }).then(
        (r) => callback({ id: r.producerId }),
        (e: unknown) => errback(e as Error),
      );
    });
  }
  t.on('connectionstatechange', (state) => {
    if (!ctx.isCurrent()) return;
    ctx.onConnectionState(direction, state);
    if (state === 'disconnected' || state === 'failed') void ctx.ice.restart(t, ctx.isCurrent);
  });
  return t;
}

/** ICE restart on a transport that lost connectivity (network change, NAT rebinding); one at a time per transport. */
export class IceRestarter {
  private readonly running = new Set<string>();

  constructor(
    private readonly callId: string,
    private readonly request: CallRequest,
  ) {}

  async restart(t: types.Transport, isCurrent: () => boolean): Promise<void> {
    if (this.running.has(t.id)) return;
    this.running.add(t.id);
    try {
      const r = await this.request('call.restartIce', { callId: this.callId, transportId: t.id });
      if (!isCurrent() || t.closed) return;
      if (!isIceParameters(r.iceParameters)) throw new Error('restartIce answer without ICE parameters');
      await t.restartIce({ iceParameters: r.iceParameters });
    } catch {
      // The node may be gone: call.rejoin (or MEDIA_REJOIN) takes over.
    } finally {
      this.running.delete(t.id);
    }
  }
}

/** The restartIce answer is typed as plain JSON in the protocol; check the two fields ICE needs. */
function isIceParameters(v: Record<string, unknown>): v is types.IceParameters {
  return typeof v.usernameFragment === 'string' && typeof v.password === 'string';
}
