/**
 * A signed-in Engine on a FakeSocket, for tests of the SDK's parts: `signedIn()` makes the
 * engine (session stored, no wallet), `open()` connects it and hands back the socket that
 * plays the server.
 */
import { Engine } from '../engine.ts';
import { MemoryStore, writeJson } from '../storage.ts';
import { FakeSocket, settle } from './fake-socket.ts';

export const ME = '0x1111111111111111111111111111111111111111';

export function signedIn(storage = new MemoryStore(), address = ME): Engine {
  writeJson(storage, 'blockrtc.session.v1', { address, token: 'tok', expiresAt: Date.now() + 3_600_000 });
  const engine = new Engine({ baseUrl: 'http://test', storage, tabStorage: new MemoryStore(), WebSocketImpl: FakeSocket.impl, reconnectPolicy: { nextRetryDelayInMs: () => 0 } });
  engine.resume();
  return engine;
}

export async function open(engine: Engine, address = ME): Promise<FakeSocket> {
  const done = engine.connect();
  await settle();
  const ws = FakeSocket.last;
  ws.open({ address });
  await done;
  await settle();
  return ws;
}

/** Loses the link and opens the next socket the SDK creates. */
export async function reconnect(ws: FakeSocket, address = ME): Promise<FakeSocket> {
  ws.drop();
  await new Promise((r) => setTimeout(r, 0));
  await settle();
  const next = FakeSocket.last;
  if (next === ws) throw new Error('the SDK did not reconnect');
  next.open({ address });
  await settle();
  return next;
}
