/**
 * The filter panel: base models and tags with counts (tags cycle include → exclude → off),
 * favourites only, tag logic, and the folder tree. Writes only into the query store.
 */
import { h, closestIn } from './dom.js';
import { createIcon } from './icon.js';
import { createFolderTree } from './folder_tree.js';
import { normaliseTree } from '../lib/folder_tree_model.js';
import { countActiveFilters, cycleTag, defaultQuery, toggleInList } from '../lib/list_query.js';
import { formatCount } from '../lib/format.js';
import { errorText } from '../i18n/error_text.js';

/** deps: {models, query, t, lang(), onClose(), toasts} */
export function createFilterPanel(root, deps) {
  const { models, query, t } = deps;
  let baseModels = [];
  let tags = [];
  let showAllTags = false;

  const baseList = h('div', { class: 'lm-chips', role: 'group', 'aria-label': t('filters.base_models') });
  const tagList = h('div', { class: 'lm-chips', role: 'group', 'aria-label': t('filters.tags') });
  const moreTags = h('button', { type: 'button', class: 'lm-link-btn', dataset: { filter: 'more-tags' }, hidden: true });
  const tagLogic = h('select', { class: 'lm-select lm-select--sm', 'aria-label': t('filters.tag_logic'), dataset: { filter: 'logic' } },
    h('option', { value: 'any', text: t('filters.logic_any') }), h('option', { value: 'all', text: t('filters.logic_all') }));
  const favorites = h('input', { type: 'checkbox', dataset: { filter: 'favorites' } });
  const recursive = h('input', { type: 'checkbox', dataset: { filter: 'recursive' } });
  const treeHost = h('div', { class: 'lm-filter-tree' });
  const clear = h('button', { type: 'button', class: 'lm-btn lm-btn--ghost lm-btn--sm', dataset: { filter: 'clear' } },
    createIcon('close', { size: 14 }), h('span', { text: t('filters.clear') }));

  const tree = createFolderTree(treeHost, {
    t, label: t('filters.folders'), allLabel: t('filters.all_folders'),
    onSelect(path) { query.set({ folder: path }); },
  });

  root.classList.add('lm-filters');
  root.setAttribute('aria-label', t('filters.title'));
  root.append(
    h('div', { class: 'lm-filters-head' },
      h('h2', { class: 'lm-filters-title', text: t('filters.title') }), clear,
      h('button', { type: 'button', class: 'lm-icon-btn lm-filters-close', dataset: { filter: 'close' }, 'aria-label': t('common.close') }, createIcon('close'))),
    h('div', { class: 'lm-filters-scroll' },
      h('section', { class: 'lm-filter-section' },
        h('label', { class: 'lm-check lm-check--row' }, favorites, createIcon('star', { size: 15 }), h('span', { text: t('filters.favorites_only') }))),
      h('section', { class: 'lm-filter-section' },
        h('h3', { class: 'lm-filter-heading', text: t('filters.base_models') }), baseList),
      h('section', { class: 'lm-filter-section' },
        h('div', { class: 'lm-filter-heading-row' }, h('h3', { class: 'lm-filter-heading', text: t('filters.tags') }), tagLogic),
        h('p', { class: 'lm-filter-hint', text: t('filters.tag_hint') }),
        tagList, moreTags),
      h('section', { class: 'lm-filter-section' },
        h('div', { class: 'lm-filter-heading-row' }, h('h3', { class: 'lm-filter-heading', text: t('filters.folders') }),
          h('label', { class: 'lm-check lm-check--sm' }, recursive, h('span', { text: t('filters.recursive') }))),
        treeHost)));

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
    recursive.checked = q.recursive;
    clear.disabled = countActiveFilters(q) === 0;
    tree.update({ selected: q.folder });
  }

  async function load() {
    const [base, top, folders] = await Promise.allSettled([models.baseModels(), models.topTags(100), models.unifiedFolderTree()]);
    if (base.status === 'fulfilled') baseModels = base.value.base_models || [];
    if (top.status === 'fulfilled') tags = top.value.tags || [];
    if (folders.status === 'fulfilled') tree.update({ nodes: normaliseTree(folders.value.tree || {}) });
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
      query.set({ baseModels: d.baseModels, tagInclude: d.tagInclude, tagExclude: d.tagExclude, favoritesOnly: false, folder: '' });
    } else if (el.dataset.filter === 'more-tags') { showAllTags = !showAllTags; render(); }
    else if (el.dataset.filter === 'close') deps.onClose();
  }

  function onChange(event) {
    const el = event.target;
    if (el === favorites) query.set({ favoritesOnly: el.checked });
    else if (el === recursive) query.set({ recursive: el.checked });
    else if (el === tagLogic) query.set({ tagLogic: el.value });
  }

  root.addEventListener('click', onClick);
  root.addEventListener('change', onChange);
  const unsub = query.subscribe(render);
  render();
  load();

  let reloadTimer = 0;
  return {
    update: render,
    /** Counts changed (live update): reload them, coalescing bursts. */
    reload() { clearTimeout(reloadTimer); reloadTimer = setTimeout(load, 400); },
    destroy() { clearTimeout(reloadTimer); unsub(); tree.destroy(); root.replaceChildren(); },
  };
}
