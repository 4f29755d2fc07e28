import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { GroupDetail, GroupInfo, GroupMember, GroupMessage, GroupSummary } from '../../protocol/index.ts';
import { CallManager } from './call/index.ts';
import type { Engine } from './engine.ts';
import { GroupsClient, type GroupState } from './groups.ts';
import { FakeSocket, settle, type SentFrame } from './test-support/fake-socket.ts';
import { ME, open, reconnect, signedIn } from './test-support/signed-in.ts';

vi.setConfig({ testTimeout: 5_000 });

const BOB = '0x2222222222222222222222222222222222222222';
const CAROL = '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed';
const GID = '0b3c4d5e-0000-4000-8000-00000000000a';
const CALL = '6f1c2f3e-0000-4000-8000-000000000001';
const T = '2026-01-01T00:00:00.000Z';

function info(over: Partial<GroupInfo> = {}): GroupInfo {
  return { id: GID, conversation: `g:${GID}`, name: 'Team', description: null, picture: '🚀', createdBy: ME, createdAt: T, memberCount: 3, gate: null, activeCall: null, ...over };
}
function member(address: string, over: Partial<GroupMember> = {}): GroupMember {
  return { address, role: 'member', state: 'active', addedBy: ME, since: T, ...over };
}
function detail(members: GroupMember[] = [member(ME, { role: 'admin' }), member(BOB), member(CAROL, { state: 'invited' })]): GroupDetail {
  return { group: info(), members };
}
function summary(over: Partial<GroupSummary> = {}): GroupSummary {
  return { ...info(), role: 'member', state: 'active', lastMessage: null, unread: 2, readUpTo: null, ...over };
}
function system(id: string, sys: GroupMessage['system']): GroupMessage {
  return { id, group: GID, conversation: `g:${GID}`, from: ME, clientId: `s-${id}`, kind: 'system', text: null, attachment: null, system: sys, createdAt: T };
}

async function setup(): Promise<{ engine: Engine; groups: GroupsClient; calls: CallManager; ws: FakeSocket; changes: GroupState[] }> {
  const engine = signedIn();
  const calls = new CallManager(engine);
  const groups = new GroupsClient(engine, calls);
  const changes: GroupState[] = [];
  groups.on('change', (g) => changes.push(structuredClone(g)));
  const ws = await open(engine);
  return { engine, groups, calls, ws, changes };
}

/** Runs `action`, answering the one request it sends with `answer` (or an error). */
async function answered<T>(ws: FakeSocket, action: () => Promise<T>, answer: unknown | { error: string }): Promise<{ result: Promise<T>; frame: SentFrame }> {
  const before = ws.sent.length;
  const result = action();
  result.catch(() => undefined);
  await settle();
  const frame = ws.sent[before];
  if (!frame) throw new Error('no request was sent');
  if (answer && typeof answer === 'object' && 'error' in answer) ws.fail(frame.id, (answer as { error: string }).error);
  else ws.reply(frame.id, answer);
  await settle();
  return { result, frame };
}

beforeEach(() => FakeSocket.reset());

describe('GroupsClient membership', () => {
  it('creates a group with normalised members and keeps its details, my role and the member list', async () => {
    const { groups, ws, changes } = await setup();
    const { result, frame } = await answered(ws, () => groups.create({ name: 'Team', picture: '🚀', members: [BOB, CAROL.toLowerCase()] }), detail());
    expect(frame).toMatchObject({ type: 'group.create', name: 'Team', picture: '🚀', members: [BOB, CAROL] });
    expect(frame).not.toHaveProperty('description');
    const st = await result;
    expect(st).toMatchObject({ role: 'admin', standing: 'active', info: { id: GID, name: 'Team' } });
    expect(st.members?.map((m) => [m.address, m.state])).toEqual([
      [ME, 'active'],
      [BOB, 'active'],
      [CAROL, 'invited'],
    ]);
    expect(groups.cached(`g:${GID}`)).toBe(st);
    expect(changes).toHaveLength(1);
  });

  it('rejects a member that is not an address before asking the server', async () => {
    const { groups, ws } = await setup();
    await expect(groups.create({ name: 'x', members: ['nobody'] })).rejects.toMatchObject({ code: 'INVALID_FIELDS' });
    expect(ws.sent).toEqual([]);
  });

  it('lists groups and invitations; a group no longer listed is kept, marked removed', async () => {
    const { groups, ws } = await setup();
    const other = '0b3c4d5e-0000-4000-8000-00000000000b';
    const first = await answered(ws, () => groups.list(), { groups: [summary(), summary({ id: other, conversation: `g:${other}`, state: 'invited', name: 'Invite' })] });
    expect((await first.result).map((g) => [g.info.name, g.standing, g.unread])).toEqual([
      ['Team', 'active', 2],
      ['Invite', 'invited', 2],
    ]);
    await answered(ws, () => groups.list(), { groups: [summary({ id: other, conversation: `g:${other}`, state: 'invited' })] });
    expect(groups.cached(GID)?.standing).toBe('removed');
  });

  it('follows my membership from events: invited, then accepted; a removal forgets the member list', async () => {
    const { groups, ws } = await setup();
    const seen = vi.fn();
    groups.on('membership', seen);
    ws.event('group.membership', { group: info({ createdBy: BOB }), state: 'invited', role: 'member', by: BOB });
    expect(groups.cached(GID)).toMatchObject({ standing: 'invited', role: 'member' });
    expect(seen).toHaveBeenCalledWith(expect.objectContaining({ state: 'invited', by: BOB }));

    const { result, frame } = await answered(ws, () => groups.accept(GID), detail([member(BOB, { role: 'admin' }), member(ME)]));
    expect(frame).toMatchObject({ type: 'group.accept', group: GID });
    expect(await result).toMatchObject({ standing: 'active', role: 'member' });

    ws.event('group.membership', { group: info(), state: 'removed', role: 'member', by: BOB });
    expect(groups.cached(GID)).toMatchObject({ standing: 'removed', members: null });
  });

  it('an invitation can be declined; a second decline is refused with the server code', async () => {
    const { groups, ws } = await setup();
    ws.event('group.membership', { group: info(), state: 'invited', role: 'member', by: BOB });
    await (await answered(ws, () => groups.decline(GID), {})).result;
    expect(groups.cached(GID)?.standing).toBe('declined');
    const again = await answered(ws, () => groups.decline(GID), { error: 'GROUP_NOT_INVITED' });
    await expect(again.result).rejects.toMatchObject({ code: 'GROUP_NOT_INVITED' });
  });
});

describe('GroupsClient admin actions', () => {
  async function withGroup() {
    const ctx = await setup();
    await (await answered(ctx.ws, () => ctx.groups.create({ name: 'Team', members: [BOB] }), detail([member(ME, { role: 'admin' }), member(BOB)]))).result;
    return ctx;
  }

  it('adds, promotes and removes members, keeping the cached list in step', async () => {
    const { groups, ws } = await withGroup();
    const add = await answered(ws, () => groups.addMembers(GID, [CAROL.toLowerCase()]), { added: [member(CAROL, { state: 'invited' })] });
    expect(add.frame).toMatchObject({ type: 'group.addMembers', group: GID, members: [CAROL] });
    expect(await add.result).toHaveLength(1);
    expect(groups.cached(GID)?.members?.map((m) => m.address)).toEqual([ME, BOB, CAROL]);

    const promote = await answered(ws, () => groups.setRole(GID, BOB, 'admin'), {});
    expect(promote.frame).toMatchObject({ type: 'group.setRole', member: BOB, role: 'admin' });
    await promote.result;
    expect(groups.cached(GID)?.members?.find((m) => m.address === BOB)?.role).toBe('admin');

    const remove = await answered(ws, () => groups.removeMember(GID, CAROL), {});
    expect(remove.frame).toMatchObject({ type: 'group.removeMember', member: CAROL });
    await remove.result;
    expect(groups.cached(GID)?.members?.map((m) => m.address)).toEqual([ME, BOB]);
  });

  it('a refused admin action changes nothing here and rejects with the server code', async () => {
    const { groups, ws } = await withGroup();
    const r = await answered(ws, () => groups.removeMember(GID, BOB), { error: 'NOT_GROUP_ADMIN' });
    await expect(r.result).rejects.toMatchObject({ code: 'NOT_GROUP_ADMIN' });
    expect(groups.cached(GID)?.members?.map((m) => m.address)).toEqual([ME, BOB]);
  });

  it('renames; an update that changes nothing is refused before asking the server', async () => {
    const { groups, ws } = await withGroup();
    const sent = ws.sent.length;
    await expect(groups.update(GID, {})).rejects.toMatchObject({ code: 'INVALID_FIELDS' });
    expect(ws.sent).toHaveLength(sent);
    const r = await answered(ws, () => groups.rename(GID, 'Crew'), { group: info({ name: 'Crew' }) });
    expect(r.frame).toMatchObject({ type: 'group.update', group: GID, name: 'Crew' });
    await r.result;
    expect(groups.cached(GID)?.info.name).toBe('Crew');
  });

  it('leaving marks the group left', async () => {
    const { groups, ws } = await withGroup();
    await (await answered(ws, () => groups.leave(`g:${GID}`), {})).result;
    expect(ws.request('group.leave')).toMatchObject({ group: GID });
    expect(groups.cached(GID)?.standing).toBe('left');
  });

  it('applies details from an "updated" system message and fetches the members again after a membership one', async () => {
    const { groups, ws } = await withGroup();
    ws.event('group.message', system('50', { action: 'updated', by: BOB, name: 'Renamed', picture: '#336699' }));
    expect(groups.cached(GID)?.info).toMatchObject({ name: 'Renamed', picture: '#336699' });
    expect(ws.requests('group.get')).toHaveLength(0);

    ws.event('group.message', system('51', { action: 'removed', by: BOB, members: [CAROL] }));
    ws.event('group.message', system('52', { action: 'added', by: BOB, members: [CAROL] }));
    await settle();
    // Two system messages in a row: one request.
    expect(ws.requests('group.get')).toHaveLength(1);
    ws.reply(ws.request('group.get').id, detail([member(ME), member(BOB, { role: 'admin' })]));
    await settle();
    expect(groups.cached(GID)?.role).toBe('member');
  });

  it('lists again after a reconnect (events may have been missed)', async () => {
    const { groups, ws } = await withGroup();
    const ws2 = await reconnect(ws);
    expect(ws2.requests('group.list')).toHaveLength(1);
    void groups;
  });
});

describe('GroupsClient calls', () => {
  it('tracks the running call from group.call events; an "ended" for an older call changes nothing', async () => {
    const { groups, ws } = await setup();
    ws.event('group.membership', { group: info(), state: 'active', role: 'member', by: BOB });
    ws.event('group.call', { group: GID, callId: CALL, kind: 'video', from: BOB, state: 'started' });
    expect(groups.cached(GID)?.info.activeCall).toMatchObject({ callId: CALL, kind: 'video', startedBy: BOB });
    ws.event('group.call', { group: GID, callId: 'older', kind: 'audio', from: BOB, state: 'ended' });
    expect(groups.cached(GID)?.info.activeCall?.callId).toBe(CALL);
    ws.event('group.call', { group: GID, callId: CALL, kind: 'video', from: BOB, state: 'ended' });
    expect(groups.cached(GID)?.info.activeCall).toBeNull();
  });

  it('calls the group: group.call, then joins that call as a group session (left again when the join fails)', async () => {
    const { groups, calls, ws } = await setup();
    ws.responder = (f, s) => {
      if (f.type === 'group.call') s.reply(f.id, { callId: CALL });
      else if (f.type === 'call.join') s.fail(f.id, 'CALL_ENDED');
      else s.reply(f.id);
    };
    const sessions: string[] = [];
    calls.on('session', (s) => sessions.push(`${s.callId} ${s.group} ${s.options.waitForOthers}`));
    await expect(groups.call(`g:${GID}`, 'audio', { audio: false })).rejects.toMatchObject({ code: 'CALL_ENDED' });
    expect(ws.request('group.call')).toMatchObject({ group: GID, kind: 'audio' });
    expect(sessions).toEqual([`${CALL} ${GID} true`]);
    expect(calls.current).toBeNull();
  });

  it('joins a running call late, found with group.get; without one it says so', async () => {
    const { groups, calls, ws } = await setup();
    let running: GroupInfo['activeCall'] = { callId: CALL, kind: 'audio', startedBy: BOB, startedAt: T };
    ws.responder = (f, s) => {
      if (f.type === 'group.get') s.reply(f.id, { group: info({ activeCall: running }), members: [member(ME), member(BOB, { role: 'admin' })] });
      else if (f.type === 'call.join') s.fail(f.id, 'CALL_ENDED');
      else s.reply(f.id);
    };
    const sessions: string[] = [];
    calls.on('session', (s) => sessions.push(`${s.callId} ${s.initiator} ${s.state}`));
    await expect(groups.joinCall(GID, { audio: false })).rejects.toMatchObject({ code: 'CALL_ENDED' });
    expect(ws.request('call.join')).toMatchObject({ callId: CALL });
    expect(ws.requests('call.accept')).toHaveLength(0);
    expect(sessions).toEqual([`${CALL} ${BOB} joining`]);

    running = null;
    await expect(groups.joinCall(GID)).rejects.toMatchObject({ code: 'CALL_ENDED', message: 'The group has no call running' });
  });

  it('accepting a ringing group call makes a group session', async () => {
    const { calls, ws } = await setup();
    ws.responder = (f, s) => (f.type === 'call.join' ? s.fail(f.id, 'CALL_ENDED') : s.reply(f.id));
    ws.event('call.incoming', { callId: CALL, from: BOB, kind: 'audio', participants: [BOB], expiresAt: T, group: GID });
    const sessions: string[] = [];
    calls.on('session', (s) => sessions.push(`${s.group} ${s.options.waitForOthers}`));
    await expect(calls.accept(CALL, { audio: false })).rejects.toMatchObject({ code: 'CALL_ENDED' });
    expect(sessions).toEqual([`${GID} true`]);
  });
});
