/** Small pieces every group screen shares: the group's picture and how system messages read. */
import type { GroupInfo, GroupSystem } from '../sdk/index.ts';
import { h, shortAddress } from './ui.ts';

/** The emojis and colours the create dialog offers (any emoji or #rrggbb is valid on the wire). */
export const PICTURE_EMOJIS = ['🚀', '🎉', '💬', '🦊', '🌱', '🔥', '🎧', '⚡'];
export const PICTURE_COLOURS = ['#5b4cf5', '#1fb6d1', '#12b76a', '#f59e0b', '#ef4444', '#ec4899'];

export function groupAvatar(info: Pick<GroupInfo, 'name' | 'picture'>, size: '' | 'lg' = ''): HTMLElement {
  const pic = info.picture;
  if (pic && !pic.startsWith('#')) return h('div', { class: `avatar group-pic emoji ${size}`, 'data-testid': 'group-picture' }, pic);
  const colour = pic ?? '#5b4cf5';
  const initials = info.name.trim().slice(0, 2).toUpperCase();
  return h('div', { class: `avatar group-pic ${size}`, 'data-testid': 'group-picture', style: `background: ${colour}` }, initials);
}

/** "You", or the short address. */
export function who(address: string, me: string | null): string {
  return address === me ? 'You' : shortAddress(address);
}

function list(addresses: string[] | undefined, me: string | null): string {
  const names = (addresses ?? []).map((a) => (a === me ? 'you' : shortAddress(a)));
  if (names.length <= 1) return names[0] ?? 'someone';
  return `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
}

/** One line for a system message of a group conversation. */
export function systemText(sys: GroupSystem | null, me: string | null): string {
  if (!sys) return 'The group changed';
  const by = who(sys.by, me);
  switch (sys.action) {
    case 'created':
      return `${by} created the group “${sys.name ?? ''}”`;
    case 'added':
      return `${by} added ${list(sys.members, me)}`;
    case 'invited':
      return `${by} invited ${list(sys.members, me)}`;
    case 'joined':
      return `${list(sys.members, me)} joined`.replace(/^you/, 'You');
    case 'declined':
      return `${list(sys.members, me)} declined the invitation`.replace(/^you/, 'You');
    case 'removed':
      return `${by} removed ${list(sys.members, me)}`;
    case 'left':
      return `${list(sys.members, me)} left`.replace(/^you/, 'You');
    case 'role':
      return `${by} made ${list(sys.members, me)} ${sys.role === 'admin' ? 'an admin' : 'a member'}`;
    case 'updated': {
      const parts: string[] = [];
      if (sys.name !== undefined) parts.push(`renamed the group to “${sys.name}”`);
      if (sys.description !== undefined) parts.push(sys.description ? 'changed the description' : 'removed the description');
      if (sys.picture !== undefined) parts.push(sys.picture ? 'changed the picture' : 'removed the picture');
      return `${by} ${parts.join(' and ') || 'updated the group'}`;
    }
    default:
      return 'The group changed';
  }
}
