/**
 * The listing query as a plain value and its translation into `/list` URL parameters.
 * Pure: no DOM, no fetch; the query store holds the value, the grid calls buildListParams.
 */

export const PAGE_SIZE = 100;

export const SEARCH_SCOPES = Object.freeze(['filename', 'modelname', 'tags', 'creator', 'trigger_words']);

export const SORT_KEYS = Object.freeze(['name', 'date', 'size', 'usage', 'last_used']);

/** The default direction of each sort key (matches the server's defaults). */
export const DEFAULT_SORT_DIRECTION = Object.freeze({ name: 'asc', date: 'desc', size: 'desc', usage: 'desc', last_used: 'desc' });

export function defaultQuery() {
  return {
    search: '',
    scopes: { filename: true, modelname: true, tags: true, creator: false, trigger_words: false },
    fuzzy: false,
    sortKey: 'name',
    sortDir: 'asc',
    baseModels: [],
    tagInclude: [],
    tagExclude: [],
    tagLogic: 'any',
    favoritesOnly: false,
    hasUpdate: false,
    folder: '',
    recursive: true,
  };
}

/** URLSearchParams for `GET /api/lm/{prefix}/list` at a given page. */
export function buildListParams(query, page = 1, pageSize = PAGE_SIZE) {
  const params = new URLSearchParams();
  params.set('page', String(page));
  params.set('page_size', String(pageSize));
  params.set('sort_by', `${query.sortKey}:${query.sortDir}`);
  const search = (query.search || '').trim();
  if (search) {
    params.set('search', search);
    for (const scope of SEARCH_SCOPES) params.set(`search_${scope}`, query.scopes[scope] ? 'true' : 'false');
    if (query.fuzzy) params.set('fuzzy_search', 'true');
  }
  if (query.folder) {
    params.set('folder', query.folder);
    params.set('recursive', query.recursive ? 'true' : 'false');
  }
  for (const base of query.baseModels) params.append('base_model', base);
  for (const tag of query.tagInclude) params.append('tag_include', tag);
  for (const tag of query.tagExclude) params.append('tag_exclude', tag);
  if (query.tagInclude.length + query.tagExclude.length > 0) params.set('tag_logic', query.tagLogic);
  if (query.favoritesOnly) params.set('favorites_only', 'true');
  if (query.hasUpdate) params.set('has_update', 'true');
  return params;
}

/** A stable string identifying which rows a query selects (page and size excluded). */
export function queryKey(query) {
  const params = buildListParams(query, 1, PAGE_SIZE);
  params.delete('page');
  return params.toString();
}

/** How many filters (not search or sort) narrow the list; shown as a badge on the filter button. */
export function countActiveFilters(query) {
  return query.baseModels.length + query.tagInclude.length + query.tagExclude.length
    + (query.favoritesOnly ? 1 : 0) + (query.hasUpdate ? 1 : 0) + (query.folder ? 1 : 0);
}

/** Cycle a tag through include → exclude → off; returns the new include/exclude lists. */
export function cycleTag(query, tag) {
  const include = query.tagInclude.filter((t) => t !== tag);
  const exclude = query.tagExclude.filter((t) => t !== tag);
  if (query.tagInclude.includes(tag)) exclude.push(tag);
  else if (!query.tagExclude.includes(tag)) include.push(tag);
  return { tagInclude: include, tagExclude: exclude };
}

export function toggleInList(list, value) {
  return list.includes(value) ? list.filter((v) => v !== value) : [...list, value];
}
