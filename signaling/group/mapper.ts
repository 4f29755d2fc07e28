import type { ActiveCallRow, GroupRow, GroupMessageRow, MemberRow } from '../../db/groups.ts';
import type { GroupInfo, GroupMember, GroupMessage, GroupSystem } from '../../protocol/index.ts';

export function toGroupMessage(m: GroupMessageRow): GroupMessage {
  const system = m.kind === 'system' && m.body ? (JSON.parse(m.body) as GroupSystem) : null;
  return {
    id: m.id.toString(),
    group: m.groupId,
    conversation: m.conversation,
    from: m.sender,
    clientId: m.clientId,
    kind: m.kind,
    text: system ? null : m.body,
    attachment: m.attachment,
    system,
    createdAt: m.createdAt.toISOString(),
  };
}

export function toGroupInfo(g: GroupRow, memberCount: number, call: ActiveCallRow | null): GroupInfo {
  return {
    id: g.id,
    conversation: `g:${g.id}`,
    name: g.name,
    description: g.description,
    picture: g.picture,
    createdBy: g.createdBy,
    createdAt: g.createdAt.toISOString(),
    memberCount,
    gate: g.gate ?? null,
    activeCall: call ? { callId: call.callId, kind: call.kind, startedBy: call.startedBy, startedAt: call.startedAt.toISOString() } : null,
  };
}

export function toGroupMember(m: MemberRow): GroupMember {
  return { address: m.address, role: m.role, state: m.state === 'invited' ? 'invited' : 'active', addedBy: m.addedBy, since: m.since.toISOString() };
}
