import type { Handlers } from '../ws/dispatch.ts';
import type { GroupService } from './service.ts';

type GroupRequest = Extract<keyof Handlers, `group.${string}`>;

/** The group requests of the wire protocol, routed to the group service (`group.call` to the call service). */
export function groupHandlers(groups: GroupService): Omit<Pick<Handlers, GroupRequest>, 'group.call'> {
  return {
    'group.create': (c, r) => groups.create(c, r),
    'group.get': (c, r) => groups.get(c, r),
    'group.list': (c) => groups.list(c),
    'group.addMembers': (c, r) => groups.addMembers(c, r),
    'group.removeMember': (c, r) => groups.removeMember(c, r),
    'group.leave': (c, r) => groups.leave(c, r),
    'group.update': (c, r) => groups.update(c, r),
    'group.setRole': (c, r) => groups.setRole(c, r),
    'group.accept': (c, r) => groups.accept(c, r),
    'group.decline': (c, r) => groups.decline(c, r),
    'group.send': (c, r) => groups.send(c, r),
    'group.history': (c, r) => groups.history(c, r),
    'group.delivered': (c, r) => groups.delivered(c, r),
    'group.read': (c, r) => groups.read(c, r),
    'group.receipts': (c, r) => groups.receipts(c, r),
    'group.typing': (c, r) => groups.typing(c, r),
  };
}
