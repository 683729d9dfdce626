/**
 * The bulk-mode bar: selection count, select visible / clear, and bulk move, tag, CivitAI
 * refresh and delete. Shown only while the selection store is active.
 */
import { h, closestIn } from './dom.js';
import { createIcon } from './icon.js';

/** deps: {selection, t, lang(), visibleItems(), selectedItems(), actions} */
export function createBulkBar(root, deps) {
  const { selection, t } = deps;
  const count = h('span', { class: 'lm-bulk-count', 'aria-live': 'polite' });
  const button = (id, icon, key, kind = 'ghost') => h('button', { type: 'button', class: `lm-btn lm-btn--${kind} lm-btn--sm`, dataset: { bulk: id } },
    createIcon(icon, { size: 15 }), h('span', { class: 'lm-btn-label', text: t(key) }));
  root.classList.add('lm-bulk-bar');
  root.setAttribute('role', 'toolbar');
  root.setAttribute('aria-label', t('bulk.toolbar'));
  root.hidden = true;
  root.append(
    count,
    h('div', { class: 'lm-bulk-group' }, button('visible', 'select', 'bulk.select_visible'), button('clear', 'close', 'bulk.clear')),
    h('div', { class: 'lm-bulk-group lm-bulk-group--actions' },
      button('move', 'move', 'bulk.move'), button('tag', 'tag', 'bulk.tag'), button('refresh', 'refresh', 'bulk.refresh'),
      button('delete', 'trash', 'bulk.delete', 'danger')),
    h('button', { type: 'button', class: 'lm-icon-btn', dataset: { bulk: 'exit' }, 'aria-label': t('bulk.exit'), title: t('bulk.exit') }, createIcon('close')));

  async function onClick(event) {
    const el = closestIn(event.target, '[data-bulk]', root);
    if (!el) return;
    const what = el.dataset.bulk;
    if (what === 'visible') { selection.addMany(deps.visibleItems().map((i) => i.file_path)); return; }
    if (what === 'clear') { selection.clear(); return; }
    if (what === 'exit') { selection.exit(); return; }
    const items = await deps.selectedItems();
    if (!items.length) return;
    el.disabled = true;
    try {
      if (what === 'move') { if (await deps.actions.move(items)) selection.clear(); }
      else if (what === 'tag') await deps.actions.addTags(items);
      else if (what === 'refresh') await deps.actions.refreshCivitai(items);
      else if (what === 'delete') { if (await deps.actions.remove(items, { confirm: true })) selection.clear(); }
    } finally {
      el.disabled = false;
    }
  }

  function update() {
    const s = selection.get();
    root.hidden = !s.active;
    count.textContent = t('bulk.count', { count: s.paths.size });
    for (const el of root.querySelectorAll('.lm-bulk-group--actions button')) el.disabled = s.paths.size === 0;
  }

  root.addEventListener('click', onClick);
  const unsub = selection.subscribe(update);
  update();
  return { update, destroy() { unsub(); root.replaceChildren(); } };
}
