/**
 * The member list of an open group, beside the conversation. Admins also get the actions:
 * add members, remove, promote or demote, rename. Everyone can leave.
 */
import { normalizeAddress, type BlockRtcClient, type GroupMember, type GroupState } from '../sdk/index.ts';
import { gateBadge, gateEditor, gateErrorText } from './gate-editor.ts';
import { groupAvatar } from './group-ui.ts';
import { avatar, h, icon, isEnsName, toast } from './ui.ts';

export class GroupPanel {
  readonly el: HTMLElement;

  constructor(
    private readonly client: BlockRtcClient,
    private readonly groupId: string,
    private readonly onClose: () => void,
  ) {
    this.el = h('aside', { class: 'group-panel', 'data-testid': 'group-panel' });
    const st = client.groups.cached(groupId);
    if (st) this.render(st);
    // Always fresh when opened: the member list is not part of the conversation list.
    void client.groups.get(groupId).catch((err: unknown) => toast(`Could not load the group: ${(err as Error).message}`));
  }

  /** Names arrived for some addresses: draw the members again with them. */
  namesChanged(): void {
    const st = this.client.groups.cached(this.groupId);
    if (st) this.render(st);
  }

  render(st: GroupState): void {
    const me = this.client.address;
    this.client.names.want((st.members ?? []).map((m) => m.address));
    const admin = st.standing === 'active' && st.role === 'admin';
    const members = [...(st.members ?? [])].sort(byRoleThenAddress);
    const rows = members.map((m) => this.memberRow(m, admin, me));
    const body: (Node | null)[] = [
      h(
        'div',
        { class: 'panel-head' },
        groupAvatar(st.info, 'lg'),
        h('h3', { 'data-testid': 'panel-group-name' }, st.info.name),
        st.info.description ? h('p', { class: 'muted' }, st.info.description) : null,
        gateBadge(st.info.gate ?? null),
        h('button', { class: 'icon-btn close', 'aria-label': 'Close', title: 'Close', onclick: this.onClose }, icon('back')),
      ),
    ];
    if (admin) body.push(this.renameForm(st));
    body.push(h('div', { class: 'section-title' }, `${st.info.memberCount} member${st.info.memberCount === 1 ? '' : 's'}`));
    body.push(h('div', { class: 'member-list', 'data-testid': 'group-members' }, ...rows));
    if (admin) body.push(this.addForm());
    // The group's events re-render the panel with the new gate; nothing to do on change here.
    if (admin) body.push(h('div', { class: 'section-title' }, 'Token gate'), gateEditor(this.client, st.info, () => undefined));
    if (st.standing === 'active') {
      body.push(
        h('button', { class: 'btn btn-danger', 'data-testid': 'group-leave', onclick: () => void this.act(() => this.client.groups.leave(this.groupId), 'Leave') }, 'Leave group'),
      );
    }
    this.el.replaceChildren(...body.filter((n): n is Node => n !== null));
  }

  private memberRow(m: GroupMember, admin: boolean, me: string | null): HTMLElement {
    const actions: HTMLElement[] = [];
    if (admin && m.address !== me) {
      if (m.state === 'active') {
        const promote = m.role === 'admin' ? 'member' : 'admin';
        actions.push(
          h(
            'button',
            { class: 'link', 'data-testid': promote === 'admin' ? 'member-promote' : 'member-demote', onclick: () => void this.act(() => this.client.groups.setRole(this.groupId, m.address, promote), 'Change role') },
            promote === 'admin' ? 'Make admin' : 'Dismiss admin',
          ),
        );
      }
      actions.push(h('button', { class: 'link danger', 'data-testid': 'member-remove', onclick: () => void this.act(() => this.client.groups.removeMember(this.groupId, m.address), 'Remove') }, 'Remove'));
    }
    const tags = [m.role === 'admin' ? h('span', { class: 'tag' }, 'admin') : null, m.state === 'invited' ? h('span', { class: 'tag muted' }, 'invited') : null];
    return h(
      'div',
      { class: 'member', 'data-testid': 'group-member', 'data-address': m.address, 'data-role': m.role, 'data-state': m.state },
      avatar(m.address),
      h('div', { class: 'member-name', title: m.address }, m.address === me ? 'You' : this.client.names.display(m.address), ...tags.filter((t): t is HTMLElement => t !== null)),
      h('div', { class: 'member-actions' }, ...actions),
    );
  }

  private renameForm(st: GroupState): HTMLElement {
    const input = h('input', { value: st.info.name, maxlength: 64, 'data-testid': 'group-rename-input', 'aria-label': 'Group name' });
    const save = () => {
      const name = input.value.trim();
      if (name && name !== st.info.name) void this.act(() => this.client.groups.rename(this.groupId, name), 'Rename');
    };
    input.addEventListener('keydown', (e) => e.key === 'Enter' && save());
    return h('div', { class: 'inline-form' }, input, h('button', { class: 'btn', 'data-testid': 'group-rename-btn', onclick: save }, 'Rename'));
  }

  private addForm(): HTMLElement {
    const input = h('input', { placeholder: 'Add by address or ENS name', 'data-testid': 'group-add-input', spellcheck: false, autocomplete: 'off' });
    const add = () => {
      const entries = input.value.split(/[\s,]+/).filter(Boolean);
      if (entries.length === 0) return;
      void this.act(async () => {
        // ENS names are resolved (forward record) and shown with the address they stand for.
        const addresses = await Promise.all(entries.map(async (e) => (isEnsName(e) ? (await this.client.names.resolve(e)).address : normalizeAddress(e))));
        await this.client.groups.addMembers(this.groupId, addresses);
        const named = entries.filter(isEnsName);
        if (named.length) toast(`Added ${named.map((n) => `${n} (${addresses[entries.indexOf(n)] ?? ''})`).join(', ')}`);
        input.value = '';
      }, 'Add');
    };
    input.addEventListener('keydown', (e) => e.key === 'Enter' && add());
    return h('div', { class: 'inline-form' }, input, h('button', { class: 'btn btn-primary', 'data-testid': 'group-add-btn', onclick: add }, 'Add'));
  }

  private async act(action: () => Promise<unknown>, what: string): Promise<void> {
    try {
      await action();
    } catch (err) {
      toast(`${what} failed: ${gateErrorText(err)}`);
    }
  }
}

function byRoleThenAddress(a: GroupMember, b: GroupMember): number {
  const rank = (m: GroupMember) => (m.state === 'invited' ? 2 : m.role === 'admin' ? 0 : 1);
  return rank(a) - rank(b) || a.address.localeCompare(b.address);
}
