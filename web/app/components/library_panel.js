/**
 * A complete library view for one model type: toolbar, bulk bar, virtualised grid, context
 * menu and the shared actions. The full page mounts it with a filter panel beside it; the
 * ComfyUI sidebar mounts it with `compact: true` and an `onAdd` callback: then the filters
 * fold out under the toolbar (costing no room while closed) and the grid can be a list.
 */
import { h } from './dom.js';
import { createSearchBar } from './search_bar.js';
import { createFilterPanel } from './filter_panel.js';
import { createModelGrid } from './model_grid.js';
import { createBulkBar } from './bulk_bar.js';
import { createContextMenu } from './context_menu.js';
import { createModelActions } from './model_actions.js';
import { createQueryStore, createSelectionStore, createSettingsStore } from '../state/library_state.js';
import { triggerWords, civitaiModelUrl } from '../lib/model_text.js';
import { errorText } from '../i18n/error_text.js';

/**
 * deps: {api, prefix, modelType, t, lang(), toasts, events (socket hub or host relay),
 *        settings?, query?, selection?, compact?, pageSize? (models per request, 1-100, default 100),
 *        firstPage? (page 1 already asked for: see createModelGrid),
 *        minCardWidth? (px, default by variant), onAdd(item)?, onDragStart(item, event)?,
 *        onToggleFilters()?, filtersOpen()?,
 *        compact only: overlayHost? (where menus and popovers float: outside clipping boxes),
 *        menuBounds()? ({left, right} menus stay within), view? ('grid' | 'list' | null = by width),
 *        onViewChange(view)?, onFiltersToggle(open)?}
 */
export function createLibraryPanel(root, deps) {
  const { api, t, toasts } = deps;
  const compact = Boolean(deps.compact);
  const overlayHost = compact ? deps.overlayHost || null : null;
  let viewPref = compact && ['grid', 'list'].includes(deps.view) ? deps.view : null;
  const models = api.models(deps.prefix);
  const query = deps.query || createQueryStore();
  const selection = deps.selection || createSelectionStore();
  const settings = deps.settings || createSettingsStore();
  const lang = deps.lang || (() => 'en');

  const toolbarHost = h('div', { class: 'lm-panel-toolbar' });
  const filterHost = compact ? h('section', { class: 'lm-panel-filters', hidden: true }) : null;
  const bulkHost = h('div');
  const gridHost = h('div', { class: 'lm-panel-grid' });
  const menuHost = h('div');
  root.classList.add('lm-panel', ...(compact ? ['lm-panel--compact'] : []));
  root.append(toolbarHost, ...(filterHost ? [filterHost] : []), bulkHost, gridHost);
  (overlayHost || root).append(menuHost);

  // assigned below; the toolbar and the grid's first layout ask for it while it is being created
  let grid = null;
  let refreshTimer = 0;
  let destroyed = false;
  const refresh = () => { clearTimeout(refreshTimer); refreshTimer = setTimeout(() => grid.refresh(), 120); };

  const menu = createContextMenu(menuHost, { t, bounds: deps.menuBounds || null });
  const actions = createModelActions({
    api, models, t, toasts, settings, host: root,
    refresh: () => { refresh(); if (filters) filters.reload(); if (deps.onChanged) deps.onChanged(); },
    patchItem: (path, changes) => grid.patchItem(path, changes),
  });

  // the details dialog's module loads on first use: the cards do not wait for it
  async function openDetails(item) {
    const { openDetailsDialog } = await import('./details_dialog.js');
    if (destroyed) return;
    openDetailsDialog(item, {
      models, t, lang, settings, toasts, actions,
      patchItem: (path, changes) => grid.patchItem(path, changes),
      refresh,
    });
  }

  function menuEntries(item) {
    const isLora = item.model_type === 'lora';
    return [
      compact && deps.onAdd ? { id: 'add', label: t('card.add'), icon: 'plus' } : null,
      !compact && actions.canAddToWorkflow() ? { id: 'add-to-workflow', label: t('card.add'), icon: 'plus' } : null,
      { id: 'copy', label: isLora ? t('card.copy_lora_syntax') : t('card.copy_syntax'), icon: 'copy' },
      { id: 'copy-words', label: t('card.copy_trigger_words'), icon: 'tag', disabled: triggerWords(item).length === 0 },
      { id: 'details', label: t('card.details'), icon: 'info', hint: '↵' },
      { separator: true },
      { id: 'fetch-civitai', label: t('card.fetch_civitai'), icon: 'refresh' },
      { id: 'open-civitai', label: t('card.open_civitai'), icon: 'external', disabled: !civitaiModelUrl(item) },
      { id: 'favorite', label: item.favorite ? t('card.unfavorite') : t('card.favorite'), icon: 'star' },
      compact ? null : { id: 'select', label: t('card.select'), icon: 'select' },
      { separator: true },
      { id: 'rename', label: t('card.rename'), icon: 'edit' },
      { id: 'move', label: t('card.move'), icon: 'move' },
      { id: 'replace-preview', label: t('card.replace_preview'), icon: 'upload' },
      { id: 'exclude', label: t('card.exclude'), icon: 'eyeOff' },
      { separator: true },
      { id: 'delete', label: t('card.delete'), icon: 'trash', danger: true, hint: 'Del' },
    ].filter(Boolean);
  }

  function runAction(action, item, index) {
    switch (action) {
      case 'add': if (deps.onAdd) deps.onAdd(item); break;
      case 'add-to-workflow': actions.addToWorkflow(item); break;
      case 'copy': actions.copySyntax(item); break;
      case 'copy-words': actions.copyTriggerWords(item); break;
      case 'details': openDetails(item); break;
      case 'fetch-civitai': actions.fetchCivitai(item); break;
      case 'open-civitai': actions.openCivitai(item); break;
      case 'favorite': actions.toggleFavorite(item); break;
      case 'select': selection.toggle(item.file_path, index); break;
      case 'rename': actions.rename(item); break;
      case 'move': actions.move([item]); break;
      case 'replace-preview': actions.choosePreview(item); break;
      case 'exclude': actions.exclude(item); break;
      case 'delete': actions.remove([item], { confirm: false }); break;
      default: break;
    }
  }

  // compact: the filter panel folds out under the toolbar, built the first time it opens
  let filters = null;
  let compactFiltersOpen = false;
  function setCompactFilters(open) {
    compactFiltersOpen = open;
    if (open && !filters) {
      filters = createFilterPanel(filterHost, {
        models, query, t, lang, toasts, compact: true,
        onClose: () => { setCompactFilters(false); search.focus(); },
      });
    }
    filterHost.hidden = !open;
    search.update();
    if (deps.onFiltersToggle) deps.onFiltersToggle(open);
  }

  const viewState = {
    get: () => ({ pref: viewPref, mode: grid ? grid.mode : 'grid' }),
    set(next) {
      viewPref = next === 'grid' || next === 'list' ? next : null;
      grid.relayout();
      search.update();
      if (deps.onViewChange) deps.onViewChange(viewPref);
    },
  };

  const search = createSearchBar(toolbarHost, {
    query, selection, t, compact,
    onToggleFilters: compact ? () => setCompactFilters(!compactFiltersOpen) : deps.onToggleFilters || (() => {}),
    filtersOpen: compact ? () => compactFiltersOpen : deps.filtersOpen,
    overlayHost, bounds: deps.menuBounds || null, view: compact ? viewState : null,
  });

  grid = createModelGrid(gridHost, {
    models, query, selection, settings, t, compact,
    pageSize: deps.pageSize, minCardWidth: deps.minCardWidth, firstPage: deps.firstPage,
    view: compact ? () => viewPref : null,
    onLayout: () => { if (grid) search.update(); },
    onOpen: (item) => openDetails(item),
    onMenu(item, { x, y, anchor, index }) {
      menu.open({ entries: menuEntries(item), x, y, anchor, label: t('card.actions_for', { name: item.model_name || item.file_name }), select: (id) => runAction(id, item, index) });
    },
    onAction: (action, item, { index }) => runAction(action, item, index),
    onDropFiles: (item, files) => actions.replacePreview(item, files[0]),
    onDragStart: deps.onDragStart,
    onError: (err) => toasts.error(t('errors.load_failed', { message: errorText(err, t) })),
    onStatus({ total }) {
      const text = total === null || total === undefined ? '' : t('grid.count', { count: total });
      search.setCount(text);
    },
    onClearFilters() {
      query.set({ search: '', baseModels: [], tagInclude: [], tagExclude: [], favoritesOnly: false, folder: '' });
    },
  });

  async function selectedItems() {
    const paths = selection.list();
    const found = [];
    const missing = [];
    for (const path of paths) {
      const hit = grid.findLoaded(path);
      if (hit) found.push(hit); else missing.push(path);
    }
    for (const path of missing) {
      try {
        const data = await models.metadata(path);
        if (data.item) found.push(data.item);
      } catch { /* a model that vanished meanwhile is simply skipped */ }
    }
    return found;
  }

  const bulk = compact ? null : createBulkBar(bulkHost, {
    selection, t, lang, actions, selectedItems,
    visibleItems: () => grid.visibleItems(),
  });

  function onKeyDown(event) {
    if (event.key === 'Escape' && selection.get().active && !menu.isOpen && !document.querySelector('dialog[open]')) {
      selection.exit();
    }
  }
  root.addEventListener('keydown', onKeyDown);

  const unsubs = [];
  if (deps.events) {
    unsubs.push(deps.events.on('models_changed', (msg) => {
      if (!msg.model_type || msg.model_type === deps.modelType) { refresh(); if (filters) filters.reload(); }
    }));
    // Hash-pending badges clear once the background hasher has drained its queue.
    unsubs.push(deps.events.on('hash_progress', (msg) => {
      if (!msg.queued && (!msg.model_type || msg.model_type === deps.modelType)) refresh();
    }));
  }

  return {
    query,
    selection,
    settings,
    grid,
    actions,
    focusSearch: () => search.focus(),
    focusGrid: () => grid.focusCurrent(),
    refresh,
    reload: () => { grid.reload({ keepScroll: true }); if (filters) filters.reload(); },
    openDetails,
    /** Compact: fold the filters out or in. */
    setFiltersOpen: (open) => { if (compact) setCompactFilters(Boolean(open)); },
    update() { grid.update(); search.update(); if (bulk) bulk.update(); },
    destroy() {
      destroyed = true;
      clearTimeout(refreshTimer);
      unsubs.forEach((fn) => fn());
      root.removeEventListener('keydown', onKeyDown);
      grid.destroy();
      search.destroy();
      if (filters) filters.destroy();
      if (bulk) bulk.destroy();
      menu.destroy();
      actions.destroy();
      menuHost.remove();
      root.replaceChildren();
      root.classList.remove('lm-panel', 'lm-panel--compact');
    },
  };
}
