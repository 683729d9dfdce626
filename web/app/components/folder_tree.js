/**
 * A collapsible folder tree (ARIA tree) that reports the chosen relative folder, with an
 * optional model count per folder. Used by the filter panel and by the move dialog's picker.
 */
import { h, closestIn } from './dom.js';
import { createIcon } from './icon.js';
import { ancestorsOf } from '../lib/folder_tree_model.js';

/**
 * deps: {t, label, allLabel, onSelect(path), onVisible(paths)? (the folder paths whose rows
 * scrolled into view, '' for "all"; a library with hundreds of folders only asks for the
 * counts one can see), formatCount(n)?}; update({nodes, selected, counts (Map path → n)}).
 */
export function createFolderTree(root, deps) {
  const { t } = deps;
  const expanded = new Set();
  let state = { nodes: [], selected: '', counts: null };

  function countBadge(path) {
    const n = state.counts ? state.counts.get(path) : undefined;
    return n === undefined ? null : h('span', { class: 'lm-tree-count', text: deps.formatCount ? deps.formatCount(n) : String(n) });
  }
  const list = h('ul', { class: 'lm-tree', role: 'tree', 'aria-label': deps.label || t('filters.folders') });
  root.append(list);
  const watcher = deps.onVisible && typeof IntersectionObserver === 'function'
    ? new IntersectionObserver((entries) => {
      const paths = entries.filter((e) => e.isIntersecting).map((e) => e.target.dataset.path);
      if (paths.length) deps.onVisible(paths);
    })
    : null;

  function row(node, depth) {
    const hasChildren = node.children.length > 0;
    const open = expanded.has(node.path);
    const selected = state.selected === node.path;
    const li = h('li', {
      role: 'treeitem', class: 'lm-tree-item', 'aria-selected': selected ? 'true' : 'false',
      'aria-expanded': hasChildren ? String(open) : null,
    },
    h('div', { class: `lm-tree-row${selected ? ' lm-tree-row--selected' : ''}`, style: { paddingLeft: `${depth * 14 + 4}px` } },
      hasChildren
        ? h('button', { type: 'button', class: 'lm-tree-toggle', dataset: { toggle: node.path }, 'aria-label': open ? t('common.collapse') : t('common.expand'), tabindex: '-1' },
          createIcon(open ? 'chevronDown' : 'chevronRight', { size: 14 }))
        : h('span', { class: 'lm-tree-toggle lm-tree-toggle--leaf' }),
      h('button', { type: 'button', class: 'lm-tree-label', dataset: { path: node.path }, title: node.path },
        createIcon('folder', { size: 15 }), h('span', { text: node.name }), countBadge(node.path))));
    if (hasChildren && open) li.append(h('ul', { role: 'group' }, node.children.map((c) => row(c, depth + 1))));
    return li;
  }

  function render() {
    const items = [];
    if (deps.allLabel) {
      items.push(h('li', { role: 'treeitem', class: 'lm-tree-item', 'aria-selected': state.selected ? 'false' : 'true' },
        h('div', { class: `lm-tree-row${state.selected ? '' : ' lm-tree-row--selected'}`, style: { paddingLeft: '4px' } },
          h('span', { class: 'lm-tree-toggle lm-tree-toggle--leaf' }),
          h('button', { type: 'button', class: 'lm-tree-label', dataset: { path: '' } },
            createIcon('layers', { size: 15 }), h('span', { text: deps.allLabel }), countBadge('')))));
    }
    items.push(...state.nodes.map((n) => row(n, 0)));
    list.replaceChildren(...items);
    if (watcher) {
      watcher.disconnect();
      for (const label of list.querySelectorAll('.lm-tree-label')) watcher.observe(label);
    } else if (deps.onVisible) deps.onVisible([...list.querySelectorAll('.lm-tree-label')].map((el) => el.dataset.path));
  }

  function onClick(event) {
    const toggle = closestIn(event.target, '[data-toggle]', list);
    if (toggle) {
      const path = toggle.dataset.toggle;
      if (expanded.has(path)) expanded.delete(path); else expanded.add(path);
      render();
      list.querySelector(`[data-path="${CSS.escape(path)}"]`)?.focus();
      return;
    }
    const label = closestIn(event.target, '[data-path]', list);
    if (!label) return;
    const path = label.dataset.path;
    if (path && !expanded.has(path) && label.closest('[aria-expanded]')) expanded.add(path);
    deps.onSelect(path);
  }

  function onKey(event) {
    const label = closestIn(event.target, '[data-path]', list);
    if (!label) return;
    const path = label.dataset.path;
    const labels = [...list.querySelectorAll('.lm-tree-label')];
    const i = labels.indexOf(label);
    if (event.key === 'ArrowDown') { event.preventDefault(); labels[i + 1]?.focus(); }
    else if (event.key === 'ArrowUp') { event.preventDefault(); labels[i - 1]?.focus(); }
    else if (event.key === 'ArrowRight' && path && !expanded.has(path)) { event.preventDefault(); expanded.add(path); render(); list.querySelector(`[data-path="${CSS.escape(path)}"]`)?.focus(); }
    else if (event.key === 'ArrowLeft' && path && expanded.has(path)) { event.preventDefault(); expanded.delete(path); render(); list.querySelector(`[data-path="${CSS.escape(path)}"]`)?.focus(); }
  }

  list.addEventListener('click', onClick);
  list.addEventListener('keydown', onKey);

  return {
    update(next) {
      state = { ...state, ...next };
      for (const p of ancestorsOf(state.selected)) expanded.add(p);
      render();
    },
    destroy() { if (watcher) watcher.disconnect(); list.remove(); },
  };
}
