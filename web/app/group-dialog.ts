/** The create-group dialog: name, optional description, an emoji or colour picture, initial members. */
import { normalizeAddress, type BlockRtcClient, type GroupState } from '../sdk/index.ts';
import { PICTURE_COLOURS, PICTURE_EMOJIS, groupAvatar } from './group-ui.ts';
import { avatar, h, shortAddress } from './ui.ts';

export function openCreateGroup(client: BlockRtcClient, contacts: string[], onCreated: (group: GroupState) => void): void {
  let picture = PICTURE_EMOJIS[0]!;
  const name = h('input', { placeholder: 'Group name', maxlength: 64, 'data-testid': 'group-name-input', autocomplete: 'off' });
  const description = h('input', { placeholder: 'Description (optional)', maxlength: 280, 'data-testid': 'group-desc-input', autocomplete: 'off' });
  const extra = h('input', { placeholder: 'More addresses, comma separated (0x…)', 'data-testid': 'group-members-input', spellcheck: false, autocomplete: 'off' });
  const error = h('div', { class: 'dialog-error', 'data-testid': 'group-dialog-error', role: 'alert' });
  const preview = h('div', { class: 'pic-preview' });
  const chosen = new Set<string>();

  const drawPreview = () => preview.replaceChildren(groupAvatar({ name: name.value || 'Group', picture }, 'lg'));
  name.addEventListener('input', drawPreview);
  const options = [...PICTURE_EMOJIS, ...PICTURE_COLOURS].map((value) => {
    const b = h(
      'button',
      { class: `pic-option${value === picture ? ' selected' : ''}`, type: 'button', 'data-testid': 'picture-option', 'data-value': value, 'aria-label': `Picture ${value}`, style: value.startsWith('#') ? `background: ${value}` : '' },
      value.startsWith('#') ? '' : value,
    );
    b.addEventListener('click', () => {
      picture = value;
      for (const o of pickers.children) o.classList.toggle('selected', (o as HTMLElement).dataset.value === value);
      drawPreview();
    });
    return b;
  });
  const pickers = h('div', { class: 'pic-options' }, ...options);
  const memberList = h(
    'div',
    { class: 'member-options' },
    ...(contacts.length
      ? contacts.map((address) => {
          const box = h('input', { type: 'checkbox', 'data-testid': 'group-member-option', 'data-address': address });
          box.addEventListener('change', () => (box.checked ? chosen.add(address) : chosen.delete(address)));
          return h('label', { class: 'member-option', title: address }, box, avatar(address), h('span', {}, shortAddress(address)));
        })
      : [h('div', { class: 'muted' }, 'No contacts yet: add members by address below.')]),
  );

  const create: HTMLButtonElement = h('button', { class: 'btn btn-primary', 'data-testid': 'group-create-btn', type: 'submit' }, 'Create group');
  const cancel = h('button', { class: 'btn', type: 'button', 'data-testid': 'group-cancel-btn', onclick: () => close() }, 'Cancel');
  const form = h(
    'form',
    { class: 'dialog', 'data-testid': 'group-dialog', role: 'dialog', 'aria-label': 'New group' },
    h('h2', {}, 'New group'),
    h('div', { class: 'pic-row' }, preview, pickers),
    name,
    description,
    h('div', { class: 'section-title' }, 'Members'),
    memberList,
    extra,
    error,
    h('div', { class: 'dialog-actions' }, cancel, create),
  );
  const backdrop: HTMLDivElement = h('div', { class: 'backdrop', onclick: (e: Event) => e.target === backdrop && close() }, form);
  const close = () => backdrop.remove();

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void (async () => {
      error.textContent = '';
      let members: string[];
      try {
        const typed = extra.value.split(/[\s,]+/).filter(Boolean).map(normalizeAddress);
        members = [...new Set([...chosen, ...typed])];
      } catch (err) {
        error.textContent = (err as Error).message;
        return;
      }
      if (!name.value.trim()) {
        error.textContent = 'A group needs a name';
        return;
      }
      create.disabled = true;
      try {
        const group = await client.groups.create({ name: name.value.trim(), picture, members, ...(description.value.trim() ? { description: description.value.trim() } : {}) });
        close();
        onCreated(group);
      } catch (err) {
        error.textContent = (err as Error).message;
      } finally {
        create.disabled = false;
      }
    })();
  });
  drawPreview();
  document.body.append(backdrop);
  name.focus();
}
