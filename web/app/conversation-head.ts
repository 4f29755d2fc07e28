/**
 * What sits above an open conversation's messages: the header of a 1:1 conversation (presence,
 * block, call) or of a group (picture, name, members, group call), and the banners that ask
 * for a decision: a message request, a group invitation, a group call running without me.
 */
import { groupConversation, type BlockRtcClient, type GroupState } from '../sdk/index.ts';
import { groupAvatar, who } from './group-ui.ts';
import { avatar, h, icon, toast } from './ui.ts';
import { gateErrorText } from './gate-editor.ts';

export interface HeadActions {
  /** Narrow screens: back to the list. */
  back(): void;
  /** The group's name was clicked: show or hide its member list. */
  toggleMembers(): void;
  /** Open another conversation (the group after accepting its invitation). */
  open(key: string): void;
}

const failed = (what: string) => (err: unknown) => toast(`${what} failed: ${gateErrorText(err)}`);

export function contactHeader(client: BlockRtcClient, peer: string, actions: HeadActions): HTMLElement {
  const callBtn = (kind: 'audio' | 'video') =>
    h(
      'button',
      {
        class: 'call-btn',
        title: kind === 'audio' ? 'Voice call' : 'Video call',
        'aria-label': kind === 'audio' ? 'Voice call' : 'Video call',
        'data-testid': `call-${kind}`,
        onclick: () => void client.calls.start(peer, kind).catch(failed('Call')),
      },
      icon(kind === 'audio' ? 'phone' : 'video'),
    );
  const blocked = client.blocks.isBlocked(peer);
  const blockBtn = h(
    'button',
    {
      class: `btn small${blocked ? '' : ' btn-quiet'}`,
      'data-testid': 'block-toggle',
      'data-blocked': String(blocked),
      title: blocked ? 'Unblock: their messages and calls reach you again' : 'Block: nothing they send reaches you',
      onclick: () => {
        // The block list's change event draws the conversation again.
        (blocked ? client.blocks.remove(peer) : client.blocks.add(peer)).catch(failed(blocked ? 'Unblock' : 'Block'));
      },
    },
    blocked ? 'Unblock' : 'Block',
  );
  return h(
    'header',
    { class: 'conv-head' },
    h('button', { class: 'icon-btn back', title: 'Back', 'aria-label': 'Back', onclick: () => actions.back() }, icon('back')),
    avatar(peer),
    h('div', { class: 'who' }, h('strong', { 'data-testid': 'chat-peer', title: peer }, client.names.display(peer)), h('div', { class: 'sub', 'data-testid': 'peer-presence' })),
    blockBtn,
    ...(blocked ? [] : [callBtn('audio'), callBtn('video')]),
  );
}

/** The children of a group's header (redrawn in place whenever the group changes). */
export function groupHeaderParts(client: BlockRtcClient, g: GroupState, actions: HeadActions): HTMLElement[] {
  const id = g.info.id;
  const active = g.standing === 'active';
  const callBtn = (kind: 'audio' | 'video') =>
    h(
      'button',
      {
        class: 'call-btn',
        title: kind === 'audio' ? 'Group voice call' : 'Group video call',
        'aria-label': kind === 'audio' ? 'Group voice call' : 'Group video call',
        'data-testid': `group-call-${kind}`,
        onclick: () => void client.groups.call(id, kind).catch(failed('Call')),
      },
      icon(kind === 'audio' ? 'phone' : 'video'),
    );
  const n = g.info.memberCount;
  const sub = g.standing === 'invited' ? 'You are invited' : active ? `${n} member${n === 1 ? '' : 's'}${g.role === 'admin' ? ' · you are an admin' : ''}` : 'You are no longer a member';
  return [
    h('button', { class: 'icon-btn back', title: 'Back', 'aria-label': 'Back', onclick: () => actions.back() }, icon('back')),
    groupAvatar(g.info),
    h(
      'button',
      { class: 'who group-who', 'data-testid': 'group-members-btn', title: 'Members', onclick: () => actions.toggleMembers() },
      h('strong', { 'data-testid': 'group-name' }, g.info.name),
      h('div', { class: 'sub', 'data-testid': 'group-sub' }, sub),
    ),
    ...(active ? [callBtn('audio'), callBtn('video')] : []),
  ];
}

/** An invitation to answer, or the group's call to join late; null when neither applies. */
export function groupBanner(client: BlockRtcClient, groupId: string, actions: HeadActions): HTMLElement | null {
  const g = client.groups.cached(groupId);
  if (!g) return null;
  if (g.standing === 'invited') {
    const answer = (accept: boolean) => () => {
      const p = accept ? client.groups.accept(groupId) : client.groups.decline(groupId);
      p.then(() => actions.open(groupConversation(groupId))).catch(failed(accept ? 'Joining' : 'Declining'));
    };
    return h(
      'div',
      { class: 'banner', 'data-testid': 'group-banner' },
      h('span', {}, `${who(g.info.createdBy, client.address)} invited you to “${g.info.name}”.`),
      h('button', { class: 'btn btn-primary small', 'data-testid': 'group-accept', onclick: answer(true) }, 'Join'),
      h('button', { class: 'btn small', 'data-testid': 'group-decline', onclick: answer(false) }, 'Decline'),
    );
  }
  const call = g.info.activeCall;
  if (g.standing !== 'active' || !call || client.calls.session(call.callId)) return null;
  return h(
    'div',
    { class: 'banner call-banner', 'data-testid': 'group-banner' },
    h('span', {}, `${who(call.startedBy, client.address)} started a ${call.kind === 'video' ? 'video' : 'voice'} call.`),
    h('button', { class: 'btn btn-primary small', 'data-testid': 'join-group-call', onclick: () => void client.groups.joinCall(groupId).catch(failed('Joining the call')) }, 'Join call'),
  );
}

/** A conversation opened from the Requests tab: answer it here too. */
export function requestBanner(client: BlockRtcClient, peer: string): HTMLElement | null {
  if (!client.requests.has(peer)) return null;
  return h(
    'div',
    { class: 'banner', 'data-testid': 'request-banner' },
    h('span', {}, 'A message request: reading it tells the sender nothing. Replying accepts it too.'),
    h('button', { class: 'btn btn-primary small', 'data-testid': 'request-banner-accept', onclick: () => void client.requests.accept(peer).catch(failed('Accept')) }, 'Accept'),
    h('button', { class: 'btn small', onclick: () => void client.requests.delete(peer).catch(failed('Delete')) }, 'Delete'),
    h('button', { class: 'btn btn-danger small', onclick: () => void client.requests.block(peer).catch(failed('Block')) }, 'Block'),
  );
}
