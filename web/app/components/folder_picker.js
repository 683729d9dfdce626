/**
 * The move dialog's folder picker: choose a library root and a folder inside it (or type a
 * new sub-folder); resolves the absolute target path or null.
 */
import { h } from './dom.js';
import { openModal } from './modal.js';
import { createFolderTree } from './folder_tree.js';
import { normaliseTree } from '../lib/folder_tree_model.js';
import { errorText } from '../i18n/error_text.js';

function joinPath(root, rel) {
  const base = String(root).replace(/[\\/]+$/, '');
  const clean = String(rel || '').split(/[\\/]+/).filter((p) => p && p !== '.' && p !== '..').join('/');
  return clean ? `${base}/${clean}` : base;
}

/** deps: {models, t, toasts}; opts: {title, count}. */
export async function pickFolder(deps, { title, count = 1 }) {
  const { models, t } = deps;
  let roots = [];
  try {
    const data = await models.roots();
    roots = data.roots || [];
  } catch (err) {
    deps.toasts.error(t('errors.action_failed', { message: errorText(err, t) }));
    return null;
  }
  if (!roots.length) { deps.toasts.error(t('move.no_roots')); return null; }

  let folder = '';
  const rootSelect = h('select', { class: 'lm-select', 'aria-label': t('move.root') },
    roots.map((r) => h('option', { value: r, text: r })));
  const newFolder = h('input', { class: 'lm-input', type: 'text', placeholder: t('move.new_folder_placeholder'), 'aria-label': t('move.new_folder'), spellcheck: 'false' });
  const treeHost = h('div', { class: 'lm-picker-tree' });
  const preview = h('p', { class: 'lm-picker-target' });
  const tree = createFolderTree(treeHost, {
    t, label: t('move.folder'), allLabel: t('move.root_folder'),
    onSelect(path) { folder = path; tree.update({ selected: path }); updatePreview(); },
  });

  function target() {
    const extra = newFolder.value.trim();
    return joinPath(rootSelect.value, [folder, extra].filter(Boolean).join('/'));
  }
  function updatePreview() { preview.textContent = t('move.target', { path: target() }); }

  async function loadTree() {
    tree.update({ nodes: [], selected: '' });
    folder = '';
    updatePreview();
    try {
      const data = await models.folderTree(rootSelect.value);
      tree.update({ nodes: normaliseTree(data.tree || data.folders || {}), selected: '' });
    } catch (err) {
      deps.toasts.error(t('errors.action_failed', { message: errorText(err, t) }));
    }
  }

  rootSelect.addEventListener('change', loadTree);
  newFolder.addEventListener('input', updatePreview);
  const content = h('div', { class: 'lm-form' },
    h('p', { class: 'lm-modal-text', text: t('move.intro', { count }) }),
    h('label', { class: 'lm-field' }, h('span', { class: 'lm-field-label', text: t('move.root') }), rootSelect),
    h('div', { class: 'lm-field' }, h('span', { class: 'lm-field-label', text: t('move.folder') }), treeHost),
    h('label', { class: 'lm-field' }, h('span', { class: 'lm-field-label', text: t('move.new_folder') }), newFolder),
    preview);
  const modal = openModal({
    t, title, content, size: 'md',
    actions: [{ id: 'cancel', label: t('common.cancel') }, { id: 'ok', label: t('move.confirm'), kind: 'primary' }],
  });
  loadTree();
  const result = await modal.closed;
  tree.destroy();
  return result === 'ok' ? target() : null;
}
