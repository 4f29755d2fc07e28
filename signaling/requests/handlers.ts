import type { Handlers } from '../ws/dispatch.ts';
import type { RequestsService } from './service.ts';

/** Message requests and blocks, routed to the requests service. */
export function requestsHandlers(
  requests: RequestsService,
): Pick<Handlers, 'requests.list' | 'requests.accept' | 'requests.delete' | 'blocks.list' | 'blocks.add' | 'blocks.remove'> {
  return {
    'requests.list': (c) => requests.list(c),
    'requests.accept': (c, r) => requests.accept(c, r),
    'requests.delete': (c, r) => requests.delete(c, r),
    'blocks.list': (c) => requests.blocks(c),
    'blocks.add': (c, r) => requests.block(c, r),
    'blocks.remove': (c, r) => requests.unblock(c, r),
  };
}
