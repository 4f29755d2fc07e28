import { describeGate, errorCode, type BlockRtcClient, type SimpleGate } from '../sdk/index.ts';
import type { GroupInfo, TokenGate } from '../../protocol/index.ts';
import { h } from './ui.ts';

/**
 * Token gates in the group screens: a badge everyone sees (the rule in words) and, for the
 * group's admins, a small form to set or clear it. Kept apart from the group view so that
 * view only places these two elements.
 */

/** The rule as a badge; nothing for an ungated group. */
export function gateBadge(gate: TokenGate | null): HTMLElement | null {
  if (!gate) return null;
  const text = describeGate(gate);
  return h('span', { class: 'gate-badge', 'data-testid': 'gate-badge', title: text }, `🔒 ${text}`);
}

/** What the server's refusals mean to the person who tried. */
export function gateErrorText(err: unknown): string {
  switch (errorCode(err)) {
    case 'GATE_NOT_MET':
      return 'You do not hold the tokens this group requires.';
    case 'CHAIN_UNAVAILABLE':
      return 'The chain cannot be asked right now; try again in a moment.';
    case 'CHAIN_NOT_CONFIGURED':
      return 'This server has no endpoint for that chain.';
    default:
      return (err as Error)?.message ?? String(err);
  }
}

/** The admin's form: chain id, contract, kind, amount / token id; Set and Clear. */
export function gateEditor(client: BlockRtcClient, group: GroupInfo, changed: (g: GroupInfo) => void): HTMLElement {
  const first = group.gate?.rules[0];
  const chainId = h('input', { type: 'number', min: '1', placeholder: 'Chain id', value: String(first?.chainId ?? 1), 'data-testid': 'gate-chain' });
  const contract = h('input', { placeholder: 'Token contract 0x…', value: first?.contract ?? '', spellcheck: false, 'data-testid': 'gate-contract' });
  const kind = h(
    'select',
    { 'data-testid': 'gate-kind' },
    h('option', { value: 'erc20' }, 'ERC-20 (min amount)'),
    h('option', { value: 'erc721' }, 'ERC-721 (any, or token id)'),
    h('option', { value: 'erc1155' }, 'ERC-1155 (token id, min amount)'),
  );
  kind.value = first?.standard ?? 'erc20';
  const amount = h('input', { placeholder: 'Min amount (base units)', value: first && 'minAmount' in first ? first.minAmount : '', 'data-testid': 'gate-amount' });
  const tokenId = h('input', { placeholder: 'Token id', value: first && 'tokenId' in first ? (first.tokenId ?? '') : '', 'data-testid': 'gate-token-id' });
  const error = h('div', { class: 'add-error', role: 'alert', 'data-testid': 'gate-error' });
  const run = async (fn: () => Promise<GroupInfo>) => {
    error.textContent = '';
    try {
      changed(await fn());
    } catch (err) {
      error.textContent = gateErrorText(err);
    }
  };
  const rule = (): SimpleGate => {
    const base = { chainId: Number(chainId.value), contract: contract.value.trim() };
    if (kind.value === 'erc721') return { standard: 'erc721', ...base, ...(tokenId.value.trim() ? { tokenId: tokenId.value.trim() } : {}) };
    if (kind.value === 'erc1155') return { standard: 'erc1155', ...base, tokenId: tokenId.value.trim(), minAmount: amount.value.trim() || '1' };
    return { standard: 'erc20', ...base, minAmount: amount.value.trim() || '1' };
  };
  return h(
    'div',
    { class: 'gate-editor', 'data-testid': 'gate-editor' },
    h('div', { class: 'section-title' }, 'Token gate'),
    chainId,
    contract,
    kind,
    amount,
    tokenId,
    h(
      'div',
      { class: 'gate-actions' },
      h('button', { class: 'btn btn-primary', 'data-testid': 'gate-set', onclick: () => void run(() => client.gates.set(group.id, rule())) }, 'Set gate'),
      h('button', { class: 'btn', 'data-testid': 'gate-clear', disabled: !group.gate, onclick: () => void run(() => client.gates.clear(group.id)) }, 'Clear'),
    ),
    error,
  );
}

/**
 * A member removed by a group's token gate is told why, wherever they are in the app (the
 * group screens also show the system message). Returns the unsubscribe function.
 */
export function watchGateRemovals(client: BlockRtcClient, show: (text: string) => void): () => void {
  return client.signal.on('group.membership', (m) => {
    if (m.state !== 'removed' || !m.reason) return;
    show(
      m.reason === 'gate-not-met'
        ? `You were removed from "${m.group.name}": you no longer hold the tokens it requires.`
        : `You were removed from "${m.group.name}": the chain could not confirm your tokens for too long.`,
    );
  });
}
