/**
 * The toolbar above the grid: search box with scope toggles and fuzzy switch, sort menu,
 * filter-panel toggle with an active-filter badge, the bulk-select toggle and (compact) the
 * cards/list switch. The options popover floats beside its button inside the viewport; a host
 * may hand in `overlayHost` so it escapes a clipping or contained box (ComfyUI's sidebar).
 */
import { h, closestIn, placeBeside } from './dom.js';
import { createIcon } from './icon.js';
import { SEARCH_SCOPES, countActiveFilters, DEFAULT_SORT_DIRECTION } from '../lib/list_query.js';

const SCOPE_KEYS = {
  filename: 'search.scope_filename',
  modelname: 'search.scope_modelname',
  tags: 'search.scope_tags',
  creator: 'search.scope_creator',
  trigger_words: 'search.scope_trigger_words',
};

const SORT_CHOICES = [
  ['name:asc', 'sort.name_asc'], ['name:desc', 'sort.name_desc'],
  ['date:desc', 'sort.date_desc'], ['date:asc', 'sort.date_asc'],
  ['size:desc', 'sort.size_desc'], ['size:asc', 'sort.size_asc'],
  ['usage:desc', 'sort.usage_desc'], ['last_used:desc', 'sort.last_used_desc'],
];

/**
 * deps: {query, selection, t, compact, onToggleFilters(), filtersOpen(), overlayHost?, bounds()?,
 *        view?: {get() → {pref: 'grid'|'list'|null, mode: 'grid'|'list'}, set(pref)} (compact)}
 */
export function createSearchBar(root, deps) {
  const { query, selection, t, compact = false } = deps;
  const view = compact ? deps.view || null : null;
  const input = h('input', {
    class: 'lm-search-input', type: 'search', placeholder: t('search.placeholder'), 'aria-label': t('search.label'),
    autocomplete: 'off', spellcheck: 'false', enterkeyhint: 'search', dataset: { role: 'search' },
  });
  const hint = h('kbd', { class: 'lm-search-kbd', 'aria-hidden': 'true', text: '/' });
  const scopeButton = h('button', {
    type: 'button', class: 'lm-icon-btn lm-search-scope', 'aria-haspopup': 'true', 'aria-expanded': 'false',
    'aria-label': t('search.options'), title: t('search.options'), dataset: { bar: 'scope' },
  }, createIcon('settings', { size: 16 }));
  const scopePanel = h('div', { class: 'lm-popover lm-scope-panel', hidden: true, role: 'group', 'aria-label': t('search.options') },
    h('div', { class: 'lm-popover-title', text: t('search.scope_title') }),
    SEARCH_SCOPES.map((scope) => h('label', { class: 'lm-check' },
      h('input', { type: 'checkbox', dataset: { scope } }), h('span', { text: t(SCOPE_KEYS[scope]) }))),
    h('div', { class: 'lm-popover-sep' }),
    h('label', { class: 'lm-check' }, h('input', { type: 'checkbox', dataset: { fuzzy: '1' } }), h('span', { text: t('search.fuzzy') })),
    view ? [h('div', { class: 'lm-popover-sep' }), h('div', { class: 'lm-popover-title', text: t('view.label') }),
      h('label', { class: 'lm-check' }, h('input', { type: 'checkbox', dataset: { viewAuto: '1' } }), h('span', { text: t('view.auto') }))] : null);
  const search = h('div', { class: 'lm-search', role: 'search' },
    createIcon('search', { size: 16, className: 'lm-icon lm-search-icon' }), input, hint, scopeButton);
  const popoverHost = deps.overlayHost || search;
  popoverHost.append(scopePanel);

  const sortSelect = h('select', { class: 'lm-select lm-sort', 'aria-label': t('sort.label'), title: t('sort.label') },
    SORT_CHOICES.map(([value, key]) => h('option', { value, text: t(key) })));

  const filterBadge = h('span', { class: 'lm-badge lm-badge--accent lm-filter-count', hidden: true });
  // compact: an icon button (the label would not fit a sidebar), the panel's own filter region
  const filterButton = h('button', {
    type: 'button', class: `lm-btn lm-btn--ghost lm-filter-toggle${compact ? ' lm-btn--icon' : ''}`, 'aria-expanded': 'false',
    'aria-controls': compact ? null : 'lm-filters', dataset: { bar: 'filters' },
    title: compact ? t('filters.title') : null, 'aria-label': compact ? t('filters.title') : null,
  }, createIcon('filter', { size: 16 }), compact ? null : h('span', { class: 'lm-btn-label', text: t('filters.title') }), filterBadge);
  const viewButton = view ? h('button', {
    type: 'button', class: 'lm-btn lm-btn--ghost lm-btn--icon lm-view-toggle', dataset: { bar: 'view' },
  }, createIcon('list', { size: 16, className: 'lm-icon lm-view-list' }), createIcon('grid', { size: 16, className: 'lm-icon lm-view-grid' })) : null;
  const selectButton = compact ? null : h('button', {
    type: 'button', class: 'lm-btn lm-btn--ghost lm-select-toggle', 'aria-pressed': 'false', dataset: { bar: 'select' },
  }, createIcon('select', { size: 16 }), h('span', { class: 'lm-btn-label', text: t('bulk.select') }));
  const count = h('span', { class: 'lm-result-count', 'aria-live': 'polite' });

  root.classList.add('lm-toolbar');
  root.append(search, compact
    ? h('div', { class: 'lm-toolbar-group' }, filterButton, sortSelect, viewButton)
    : h('div', { class: 'lm-toolbar-group' }, sortSelect, filterButton, selectButton), count);

  let debounce = 0;
  let pending = false;
  function commitSearch() {
    clearTimeout(debounce);
    pending = false;
    if (query.get().search !== input.value) query.set({ search: input.value });
  }
  function onInput() {
    clearTimeout(debounce);
    pending = true;
    debounce = setTimeout(commitSearch, 180);
  }

  function onKeyDown(event) {
    if (event.key === 'Escape' && input.value) { event.preventDefault(); event.stopPropagation(); input.value = ''; query.set({ search: '' }); }
    else if (event.key === 'Enter') commitSearch();
  }

  function setScopeOpen(open) {
    scopePanel.hidden = !open;
    scopeButton.setAttribute('aria-expanded', String(open));
    if (open) {
      placeBeside(scopePanel, scopeButton, { align: 'end', gap: 6, bounds: deps.bounds ? deps.bounds() : null });
      document.addEventListener('pointerdown', onOutside, true);
      window.addEventListener('resize', onResize);
      scopePanel.querySelector('input')?.focus();
    } else {
      document.removeEventListener('pointerdown', onOutside, true);
      window.removeEventListener('resize', onResize);
    }
  }
  function onOutside(event) { if (!search.contains(event.target) && !scopePanel.contains(event.target)) setScopeOpen(false); }
  function onResize() { setScopeOpen(false); }

  function onClick(event) {
    const button = closestIn(event.target, '[data-bar]', root);
    if (!button) return;
    const what = button.dataset.bar;
    if (what === 'scope') setScopeOpen(scopePanel.hidden);
    else if (what === 'filters') deps.onToggleFilters();
    else if (what === 'view') view.set(view.get().mode === 'list' ? 'grid' : 'list');
    else if (what === 'select') { if (selection.get().active) selection.exit(); else selection.enter(); }
  }

  function onChange(event) {
    const el = event.target;
    if (el === sortSelect) {
      const [sortKey, sortDir] = sortSelect.value.split(':');
      query.set({ sortKey, sortDir: sortDir || DEFAULT_SORT_DIRECTION[sortKey] });
    } else if (el.dataset.scope) {
      query.set({ scopes: { ...query.get().scopes, [el.dataset.scope]: el.checked } });
    } else if (el.dataset.fuzzy) {
      query.set({ fuzzy: el.checked });
    } else if (el.dataset.viewAuto) {
      view.set(el.checked ? null : view.get().mode);
    }
  }

  function onPanelKey(event) {
    if (event.key === 'Escape') { event.stopPropagation(); setScopeOpen(false); scopeButton.focus(); }
  }

  input.addEventListener('input', onInput);
  input.addEventListener('keydown', onKeyDown);
  root.addEventListener('click', onClick);
  root.addEventListener('change', onChange);
  if (popoverHost !== search) scopePanel.addEventListener('change', onChange);
  scopePanel.addEventListener('keydown', onPanelKey);

  function update() {
    const q = query.get();
    // A typed-but-not-yet-committed search wins over the store until it is committed.
    if (!pending && document.activeElement !== input && input.value !== q.search) input.value = q.search;
    sortSelect.value = `${q.sortKey}:${q.sortDir}`;
    for (const box of scopePanel.querySelectorAll('[data-scope]')) box.checked = Boolean(q.scopes[box.dataset.scope]);
    scopePanel.querySelector('[data-fuzzy]').checked = q.fuzzy;
    const narrowed = SEARCH_SCOPES.some((s) => !q.scopes[s]) || q.fuzzy;
    scopeButton.classList.toggle('lm-active', narrowed);
    if (view) {
      const { pref, mode } = view.get();
      const label = mode === 'list' ? t('view.cards') : t('view.list');
      viewButton.dataset.mode = mode;
      viewButton.title = label;
      viewButton.setAttribute('aria-label', label);
      scopePanel.querySelector('[data-view-auto]').checked = pref === null;
    }
    if (filterButton) {
      const n = countActiveFilters(q);
      filterBadge.hidden = n === 0;
      filterBadge.textContent = String(n);
      filterButton.setAttribute('aria-expanded', String(Boolean(deps.filtersOpen && deps.filtersOpen())));
      filterButton.classList.toggle('lm-active', Boolean(deps.filtersOpen && deps.filtersOpen()));
    }
    if (selectButton) {
      const on = selection.get().active;
      selectButton.setAttribute('aria-pressed', String(on));
      selectButton.classList.toggle('lm-active', on);
    }
  }

  const unsubs = [query.subscribe(update), selection.subscribe(update)];
  update();

  return {
    update,
    focus() { input.focus(); input.select(); },
    setCount(text) { count.textContent = text; },
    destroy() {
      clearTimeout(debounce);
      unsubs.forEach((fn) => fn());
      document.removeEventListener('pointerdown', onOutside, true);
      window.removeEventListener('resize', onResize);
      scopePanel.remove();
      root.replaceChildren();
    },
  };
}
