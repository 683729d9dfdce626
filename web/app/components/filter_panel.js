/**
 * The filter panel: base models and tags with counts (tags cycle include → exclude → off),
 * favourites only, tag logic, and the folder tree with the number of models in each folder
 * shown (asked for lazily, a few at a time, for the folders on show). Writes only into the
 * query store.
 */
import { h, closestIn } from './dom.js';
import { createIcon } from './icon.js';
import { createFolderTree } from './folder_tree.js';
import { normaliseTree } from '../lib/folder_tree_model.js';
import { countActiveFilters, cycleTag, defaultQuery, toggleInList } from '../lib/list_query.js';
import { formatCount } from '../lib/format.js';
import { errorText } from '../i18n/error_text.js';

/** deps: {models, query, t, lang(), onClose(), toasts, compact? (the sidebar's folding panel),
 *        after? (a promise: the lists load once it settles, e.g. once the first cards are shown)} */
export function createFilterPanel(root, deps) {
  const { models, query, t } = deps;
  let baseModels = [];
  let tags = [];
  let showAllTags = false;
  let destroyed = false;
  // false until deps.after settles: no request before then (folder counts wait too)
  let started = false;

  // models per folder: one listing of page size 1 per folder on show (its `total`), at most
  // COUNT_REQUESTS at a time; forgotten when the tree reloads or "include subfolders" flips
  const COUNT_REQUESTS = 3;
  const counts = new Map();
  const countQueue = [];
  const counting = new Set();
  let countsRecursive = query.get().recursive;
  let countsGeneration = 0;
  let countsTimer = 0;

  function wantCounts(paths) {
    for (const path of paths) {
      if (!counts.has(path) && !counting.has(path) && !countQueue.includes(path)) countQueue.push(path);
    }
    pumpCounts();
  }

  function pumpCounts() {
    while (started && !destroyed && counting.size < COUNT_REQUESTS && countQueue.length) {
      const path = countQueue.shift();
      const generation = countsGeneration;
      counting.add(path);
      const params = { page: 1, page_size: 1, ...(path ? { folder: path, recursive: countsRecursive ? 'true' : 'false' } : {}) };
      models.list(params).then((data) => {
        if (generation !== countsGeneration) return;
        counts.set(path, Number(data.total) || 0);
        clearTimeout(countsTimer);
        countsTimer = setTimeout(() => { if (!destroyed) tree.update({ counts }); }, 30);
      }).catch(() => { /* no count shown for that folder */ }).finally(() => {
        counting.delete(path);
        pumpCounts();
      });
    }
  }

  function forgetCounts() {
    countsGeneration += 1;
    counts.clear();
    countQueue.length = 0;
    counting.clear();
  }

  const baseList = h('div', { class: 'lm-chips', role: 'group', 'aria-label': t('filters.base_models') });
  const tagList = h('div', { class: 'lm-chips', role: 'group', 'aria-label': t('filters.tags') });
  const moreTags = h('button', { type: 'button', class: 'lm-link-btn', dataset: { filter: 'more-tags' }, hidden: true });
  const tagLogic = h('select', { class: 'lm-select lm-select--sm', 'aria-label': t('filters.tag_logic'), dataset: { filter: 'logic' } },
    h('option', { value: 'any', text: t('filters.logic_any') }), h('option', { value: 'all', text: t('filters.logic_all') }));
  const favorites = h('input', { type: 'checkbox', dataset: { filter: 'favorites' } });
  const hasUpdate = h('input', { type: 'checkbox', dataset: { filter: 'has-update' } });
  const recursive = h('input', { type: 'checkbox', dataset: { filter: 'recursive' } });
  const treeHost = h('div', { class: 'lm-filter-tree' });
  const clear = h('button', { type: 'button', class: 'lm-btn lm-btn--ghost lm-btn--sm', dataset: { filter: 'clear' } },
    createIcon('close', { size: 14 }), h('span', { text: t('filters.clear') }));

  const tree = createFolderTree(treeHost, {
    t, label: t('filters.folders'), allLabel: t('filters.all_folders'),
    onSelect(path) { query.set({ folder: path }); },
    onVisible: wantCounts,
    formatCount: (n) => formatCount(n, deps.lang()),
  });

  root.classList.add('lm-filters');
  root.setAttribute('aria-label', t('filters.title'));
  const sections = {
    favorites: h('section', { class: 'lm-filter-section' },
      h('label', { class: 'lm-check lm-check--row' }, favorites, createIcon('star', { size: 15 }), h('span', { text: t('filters.favorites_only') })),
      h('label', { class: 'lm-check lm-check--row' }, hasUpdate, createIcon('download', { size: 15 }), h('span', { text: t('filters.has_update') }))),
    base: h('section', { class: 'lm-filter-section' },
      h('h3', { class: 'lm-filter-heading', text: t('filters.base_models') }), baseList),
    tags: h('section', { class: 'lm-filter-section' },
      h('div', { class: 'lm-filter-heading-row' }, h('h3', { class: 'lm-filter-heading', text: t('filters.tags') }), tagLogic),
      // compact (the sidebar): the hint is the tag list's tooltip instead of a line of its own
      deps.compact ? null : h('p', { class: 'lm-filter-hint', text: t('filters.tag_hint') }),
      tagList, moreTags),
    folders: h('section', { class: 'lm-filter-section' },
      h('div', { class: 'lm-filter-heading-row' }, h('h3', { class: 'lm-filter-heading', text: t('filters.folders') }),
        h('label', { class: 'lm-check lm-check--sm' }, recursive, h('span', { text: t('filters.recursive') }))),
      treeHost),
  };
  if (deps.compact) tagList.title = t('filters.tag_hint');
  // the sidebar leads with the folders, as ComfyUI's own model library does
  const order = deps.compact ? ['folders', 'favorites', 'base', 'tags'] : ['favorites', 'base', 'tags', 'folders'];

  root.append(
    h('div', { class: 'lm-filters-head' },
      h('h2', { class: 'lm-filters-title', text: t('filters.title') }), clear,
      h('button', { type: 'button', class: 'lm-icon-btn lm-filters-close', dataset: { filter: 'close' }, 'aria-label': t('common.close') }, createIcon('close'))),
    h('div', { class: 'lm-filters-scroll' }, order.map((key) => sections[key])));

  function chip({ label, count, state, data }) {
    return h('button', {
      type: 'button', class: `lm-chip${state ? ` lm-chip--${state}` : ''}`, dataset: data,
      'aria-pressed': state === 'on' || state === 'include' ? 'true' : state === 'exclude' ? 'mixed' : 'false',
      title: state === 'exclude' ? t('filters.excluded_tag', { tag: label }) : label,
    }, state === 'exclude' ? createIcon('close', { size: 12 }) : null, h('span', { class: 'lm-chip-label', text: label }),
    count !== undefined ? h('span', { class: 'lm-chip-count', text: formatCount(count, deps.lang()) }) : null);
  }

  function render() {
    const q = query.get();
    baseList.replaceChildren(...(baseModels.length ? baseModels.map((b) => chip({
      label: b.name, count: b.count, state: q.baseModels.includes(b.name) ? 'on' : '', data: { base: b.name },
    })) : [h('p', { class: 'lm-filter-empty', text: t('filters.none') })]));
    const visibleTags = showAllTags ? tags : tags.slice(0, 24);
    const extra = [...q.tagInclude, ...q.tagExclude].filter((tag) => !visibleTags.some((x) => x.tag === tag)).map((tag) => ({ tag }));
    tagList.replaceChildren(...([...visibleTags, ...extra].length ? [...visibleTags, ...extra].map((x) => chip({
      label: x.tag, count: x.count,
      state: q.tagInclude.includes(x.tag) ? 'include' : q.tagExclude.includes(x.tag) ? 'exclude' : '', data: { tag: x.tag },
    })) : [h('p', { class: 'lm-filter-empty', text: t('filters.none') })]));
    moreTags.hidden = tags.length <= 24;
    moreTags.textContent = showAllTags ? t('filters.fewer_tags') : t('filters.more_tags', { count: tags.length - 24 });
    tagLogic.value = q.tagLogic;
    favorites.checked = q.favoritesOnly;
    hasUpdate.checked = Boolean(q.hasUpdate);
    recursive.checked = q.recursive;
    clear.disabled = countActiveFilters(q) === 0;
    if (q.recursive !== countsRecursive) { countsRecursive = q.recursive; forgetCounts(); }
    tree.update({ selected: q.folder, counts });
  }

  async function load() {
    const [base, top, folders] = await Promise.allSettled([models.baseModels(), models.topTags(100), models.unifiedFolderTree()]);
    if (base.status === 'fulfilled') baseModels = base.value.base_models || [];
    if (top.status === 'fulfilled') tags = top.value.tags || [];
    forgetCounts();
    if (folders.status === 'fulfilled') tree.update({ nodes: normaliseTree(folders.value.tree || {}), counts });
    const failure = [base, top, folders].find((r) => r.status === 'rejected');
    if (failure && deps.toasts && !failure.reason.isNotReady) deps.toasts.error(t('errors.filters_failed', { message: errorText(failure.reason, t) }));
    render();
  }

  function onClick(event) {
    const el = closestIn(event.target, '[data-base],[data-tag],[data-filter]', root);
    if (!el) return;
    const q = query.get();
    if (el.dataset.base !== undefined) query.set({ baseModels: toggleInList(q.baseModels, el.dataset.base) });
    else if (el.dataset.tag !== undefined) query.set(cycleTag(q, el.dataset.tag));
    else if (el.dataset.filter === 'clear') {
      const d = defaultQuery();
      query.set({ baseModels: d.baseModels, tagInclude: d.tagInclude, tagExclude: d.tagExclude, favoritesOnly: false, hasUpdate: false, folder: '' });
    } else if (el.dataset.filter === 'more-tags') { showAllTags = !showAllTags; render(); }
    else if (el.dataset.filter === 'close') deps.onClose();
  }

  function onChange(event) {
    const el = event.target;
    if (el === favorites) query.set({ favoritesOnly: el.checked });
    else if (el === hasUpdate) query.set({ hasUpdate: el.checked });
    else if (el === recursive) query.set({ recursive: el.checked });
    else if (el === tagLogic) query.set({ tagLogic: el.value });
  }

  root.addEventListener('click', onClick);
  root.addEventListener('change', onChange);
  const unsub = query.subscribe(render);
  render();
  let reloadTimer = 0;
  Promise.resolve(deps.after).catch(() => {}).then(() => { if (!destroyed && !started) { started = true; load(); } });

  return {
    update: render,
    /** Counts changed (live update): reload them, coalescing bursts. */
    reload() { clearTimeout(reloadTimer); reloadTimer = setTimeout(() => { started = true; if (!destroyed) load(); }, 400); },
    destroy() { destroyed = true; clearTimeout(reloadTimer); clearTimeout(countsTimer); unsub(); tree.destroy(); root.replaceChildren(); },
  };
}
