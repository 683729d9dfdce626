/**
 * The virtualised card grid: only the rows in view (plus a little overscan) exist in the DOM,
 * card slots are recycled, result pages are fetched on demand and cached by page number.
 * Every pointer/keyboard event is delegated from the canvas; renders are batched per frame.
 * The same cards can be laid out as a list (one row per model, small thumbnail): on request, or
 * by itself in a compact grid too narrow for two columns.
 */
import { h, closestIn } from './dom.js';
import { createIcon } from './icon.js';
import { createCardFactory, fillCard } from './model_card.js';
import { PageCache } from '../lib/page_cache.js';
import { PAGE_SIZE, buildListParams, countActiveFilters } from '../lib/list_query.js';
import { computeLayout, totalHeight, visibleRange, pagesForRange, itemPosition, moveIndex } from '../lib/grid_layout.js';

const MAX_IN_FLIGHT = 3;
// list rows: a 36 px thumbnail plus padding; 2 px between rows
const LIST_ROW_HEIGHT = 44;
const LIST_GAP = 2;

/**
 * deps: {models, query, selection, settings (store), t, compact, pageSize? (1-100, default 100),
 *        minCardWidth? (px; default 92 compact, 150/200 full),
 *        view()? → 'grid' | 'list' | null (null: list when fewer than two columns fit), onLayout({mode, columns})?,
 *        onOpen(item, index), onMenu(item, {x, y, anchor, index}), onAction(action, item, {anchor, index}),
 *        onDropFiles(item, files), onDragStart(item, event), onStatus({total, loading, error}), onClearFilters(),
 *        firstPage? ({params: URLSearchParams string, promise}: page 1 asked for before the grid existed;
 *        the first load uses it when its parameters are the grid's own)}
 */
export function createModelGrid(root, deps) {
  const { models, query, selection, settings, t, compact = false } = deps;
  // the server caps page_size at 100
  const pageSize = Math.max(1, Math.min(PAGE_SIZE, Math.round(Number(deps.pageSize) || PAGE_SIZE)));
  const viewport = h('div', { class: 'lm-grid-viewport' });
  const canvas = h('div', { class: 'lm-grid-canvas', role: 'list', 'aria-label': t('grid.label') });
  const busy = h('div', { class: 'lm-grid-busy', 'aria-hidden': 'true' });
  const status = h('div', { class: 'lm-grid-status', hidden: true, role: 'status' });
  viewport.append(canvas);
  root.classList.add('lm-grid', ...(compact ? ['lm-grid--compact'] : []));
  root.append(busy, viewport, status);

  let cache = new PageCache({ pageSize });
  let layout = computeLayout({ width: 0 });
  let active = new Map();
  const free = [];
  const inflight = new Map();
  const failedAt = new Map();
  let wanted = new Set();
  let frame = 0;
  let pumpTimer = 0;
  let retryTimer = 0;
  let loadToken = 0;
  let focusIndex = 0;
  let tabStop = null;
  let lastError = null;
  let lastScrollTop = 0;
  let lastScrollDelta = 0;
  let lastScrollTime = 0;
  // the viewport's height, measured when the layout is known to be clean (creation and
  // resizes): a frame reads the layout once (scrollTop, before writing), never after writing
  let viewHeight = 0;
  let canvasHeight = -1;
  let rowCount = -1;
  let destroyed = false;
  let firstPage = deps.firstPage || null;
  const newCard = createCardFactory({ t, compact, draggable: Boolean(deps.onDragStart) });

  // Sidebars are narrow (200-350 px): compact cards stay small enough for two or three columns.
  const minCardWidth = () => (Number(deps.minCardWidth) > 0 ? Number(deps.minCardWidth)
    : compact ? 92 : (canvas.clientWidth < 520 ? 150 : 200));

  let mode = 'grid';

  function relayout() {
    const cardsAt = (width) => computeLayout({ width, minCardWidth: minCardWidth(), gap: compact ? 8 : 14, aspect: compact ? 1.3 : 1.38 });
    viewHeight = viewport.clientHeight;
    let width = canvas.clientWidth;
    let cards = cardsAt(width);
    const pref = deps.view ? deps.view() : 'grid';
    // "by width" asks how many cards the grid's own padding leaves room for, whatever the
    // current mode's padding: a decision that flips the padding must not flip itself back
    const gridRoom = viewport.clientWidth - 2 * (compact ? 8 : 18);
    const nextMode = pref === 'list' || (pref !== 'grid' && cardsAt(gridRoom).columns < 2) ? 'list' : 'grid';
    const modeChanged = nextMode !== mode;
    if (modeChanged) {
      // the list has its own padding: measure again in the new mode
      mode = nextMode;
      root.classList.toggle('lm-grid--list', mode === 'list');
      width = canvas.clientWidth;
      cards = cardsAt(width);
    }
    const next = mode === 'list'
      ? { columns: 1, cardWidth: Math.max(1, width), cardHeight: LIST_ROW_HEIGHT, rowHeight: LIST_ROW_HEIGHT + LIST_GAP, gap: LIST_GAP }
      : cards;
    if (!modeChanged && next.columns === layout.columns && next.cardWidth === layout.cardWidth && next.cardHeight === layout.cardHeight) return false;
    layout = next;
    canvas.style.setProperty('--lm-card-w', `${layout.cardWidth}px`);
    canvas.style.setProperty('--lm-card-h', `${layout.cardHeight}px`);
    for (const el of active.values()) el.__lmPos = -1;
    if (deps.onLayout) deps.onLayout({ mode, columns: layout.columns });
    return true;
  }

  function schedule() {
    if (!frame && !destroyed) frame = requestAnimationFrame(() => { frame = 0; render(); });
  }

  // cards that left the range this frame: reused as they are (still shown, their content kept:
  // a skeleton that stays a skeleton is not refilled), the rest hidden at the end of the frame
  const released = [];
  let shownRange = { firstVisible: 0, lastVisible: -1 };

  function slot() {
    const reused = released.pop();
    if (reused) return reused;
    const el = free.pop();
    if (el) { el.hidden = false; return el; }
    const card = newCard();
    canvas.append(card);
    return card;
  }

  function setCanvasHeight(total) {
    const height = totalHeight(layout, total);
    if (height !== canvasHeight) { canvasHeight = height; canvas.style.height = `${height}px`; }
  }

  function render() {
    if (destroyed) return;
    const total = cache.total ?? 0;
    // read before any write of this frame: no forced synchronous layout
    const scrollTop = viewport.scrollTop;
    if (scrollTop !== lastScrollTop) {
      lastScrollDelta = Math.abs(scrollTop - lastScrollTop);
      lastScrollTop = scrollTop;
    }
    setCanvasHeight(total);
    const rows = Math.ceil(total / layout.columns);
    if (rows !== rowCount) { rowCount = rows; canvas.setAttribute('aria-rowcount', String(rows)); }
    const range = visibleRange({ scrollTop, viewportHeight: viewHeight, layout, total, overscanRows: 2 });
    shownRange = range;
    for (const [index, el] of active) {
      if (index < range.start || index >= range.end) {
        active.delete(index);
        el.__lmPos = -1;
        released.push(el);
      }
    }
    const sel = selection.get();
    const current = settings.get();
    for (let index = range.start; index < range.end; index += 1) {
      let el = active.get(index);
      if (!el) { el = slot(); active.set(index, el); }
      if (el.__lmPos !== index) {
        const { x, y } = itemPosition(layout, index);
        el.style.transform = `translate(${x}px, ${y}px)`;
        el.__lmPos = index;
      }
      const item = cache.getItem(index);
      fillCard(el, item, {
        t, settings: current, index, total, selecting: sel.active,
        selected: Boolean(item) && sel.paths.has(item.file_path),
      });
    }
    for (const el of released) { el.hidden = true; free.push(el); }
    released.length = 0;
    updateTabStop(range);
    renderStatus();
    if (cache.total !== null) requestPages(pagesForRange(range.start, range.end, pageSize));
  }

  function updateTabStop(range) {
    const target = active.get(focusIndex) || active.get(range.firstVisible) || null;
    if (target === tabStop) return;
    if (tabStop) tabStop.tabIndex = -1;
    tabStop = target;
    if (tabStop) tabStop.tabIndex = 0;
  }

  function renderStatus() {
    const total = cache.total;
    let message = '';
    let actionLabel = '';
    let action = '';
    if (lastError && total === null) {
      message = lastError.isNotReady ? t('grid.initializing') : t('grid.error', { message: lastError.message });
      if (!lastError.isNotReady) { actionLabel = t('common.retry'); action = 'retry'; }
    } else if (total === 0) {
      const filtered = countActiveFilters(query.get()) > 0 || query.get().search.trim();
      message = filtered ? t('grid.no_match') : t('grid.empty');
      if (filtered && deps.onClearFilters) { actionLabel = t('filters.clear'); action = 'clear-filters'; }
    }
    const key = `${message}|${action}`;
    if (status.dataset.key === key) return;
    status.dataset.key = key;
    status.hidden = !message;
    status.replaceChildren(...(message ? [
      createIcon(lastError && total === null ? 'alert' : 'search', { size: 28 }),
      h('p', { text: message }),
      action ? h('button', { type: 'button', class: 'lm-btn lm-btn--ghost', dataset: { gridAction: action }, text: actionLabel }) : null,
    ].filter(Boolean) : []));
  }

  function requestPages(pages) {
    wanted = new Set(pages);
    for (const page of pages) cache.touch(page);
    for (const [page, ctrl] of inflight) {
      if (!wanted.has(page)) { ctrl.abort(); inflight.delete(page); }
    }
    clearTimeout(pumpTimer);
    // While the user flings the scrollbar (jumps of more than a screen), wait for the view to
    // settle before asking, instead of starting and aborting a request per frame.
    const fast = performance.now() - lastScrollTime < 100 && lastScrollDelta > viewHeight;
    pumpTimer = setTimeout(pump, fast ? 90 : 0);
  }

  function pump() {
    for (const page of wanted) {
      if (inflight.size >= MAX_IN_FLIGHT) break;
      if (cache.hasFresh(page) || inflight.has(page)) continue;
      if (performance.now() - (failedAt.get(page) ?? -Infinity) < 4000) continue;
      fetchPage(page);
    }
  }

  async function fetchPage(page) {
    const target = cache;
    const generation = target.generation;
    const ctrl = new AbortController();
    inflight.set(page, ctrl);
    try {
      const data = await models.list(buildListParams(query.get(), page, pageSize), { signal: ctrl.signal });
      if (target !== cache || generation !== target.generation) return;
      const before = target.total;
      target.setPage(page, data.items || [], Number(data.total));
      if (before !== target.total) emitStatus();
      schedule();
    } catch (err) {
      if (err && err.name === 'AbortError') return;
      failedAt.set(page, performance.now());
      if (target === cache && deps.onError) deps.onError(err);
    } finally {
      if (inflight.get(page) === ctrl) inflight.delete(page);
      if (target === cache) setTimeout(pump, 0);
    }
  }

  function emitStatus() {
    if (deps.onStatus) deps.onStatus({ total: cache.total, loading: root.classList.contains('lm-grid--loading'), error: lastError });
  }

  /** Fetch page 1 of the current query into a fresh cache; swap when it arrives. */
  async function reload({ keepScroll = false } = {}) {
    const token = ++loadToken;
    clearTimeout(retryTimer);
    for (const ctrl of inflight.values()) ctrl.abort();
    inflight.clear();
    const next = new PageCache({ pageSize });
    failedAt.clear();
    root.classList.add('lm-grid--loading');
    emitStatus();
    try {
      const params = buildListParams(query.get(), 1, pageSize);
      const early = firstPage && firstPage.params === params.toString() ? firstPage.promise : null;
      firstPage = null;
      const data = await (early || models.list(params));
      if (token !== loadToken || destroyed) return;
      next.setPage(1, data.items || [], Number(data.total));
      cache = next;
      lastError = null;
      if (!keepScroll) { viewport.scrollTop = 0; focusIndex = 0; }
      root.classList.remove('lm-grid--loading');
      for (const el of active.values()) el.__lmItem = undefined;
      render();
      emitStatus();
    } catch (err) {
      if (token !== loadToken || destroyed) return;
      lastError = err;
      root.classList.remove('lm-grid--loading');
      if (cache.total === null || !keepScroll) cache = next;
      render();
      emitStatus();
      if (err.isNotReady || err.status === 0) retryTimer = setTimeout(() => reload({ keepScroll }), 1500);
    }
  }

  /** Live update: keep what is shown, refetch the pages on screen, drop the rest when needed.
   * An empty result has no page on screen to refetch, so it is reloaded instead. */
  function refresh() {
    if (cache.total === null || cache.total === 0) { reload({ keepScroll: true }); return; }
    cache.markStale();
    for (const ctrl of inflight.values()) ctrl.abort();
    inflight.clear();
    render();
  }

  function cardOf(target) { return closestIn(target, '.lm-card', canvas); }
  function indexOf(card) { return Number(card.dataset.index); }

  function scrollToIndex(index) {
    const { y } = itemPosition(layout, index);
    const top = viewport.scrollTop;
    const height = viewport.clientHeight;
    if (y < top) viewport.scrollTop = y;
    else if (y + layout.cardHeight > top + height) viewport.scrollTop = y + layout.cardHeight - height;
  }

  function focusAt(index) {
    const total = cache.total ?? 0;
    if (!total) return;
    focusIndex = Math.max(0, Math.min(total - 1, index));
    scrollToIndex(focusIndex);
    render();
    const el = active.get(focusIndex);
    if (el) el.focus({ preventScroll: true });
  }

  async function ensureRange(a, b) {
    const [lo, hi] = a < b ? [a, b] : [b, a];
    const missing = pagesForRange(lo, hi + 1, pageSize).filter((p) => !cache.pages.has(p));
    const target = cache;
    for (const page of missing) {
      const data = await models.list(buildListParams(query.get(), page, pageSize));
      if (target !== cache) return [];
      target.setPage(page, data.items || [], Number(data.total));
    }
    const out = [];
    for (let i = lo; i <= hi; i += 1) { const item = cache.getItem(i); if (item) out.push(item.file_path); }
    return out;
  }

  async function selectRangeTo(index) {
    const anchor = selection.get().anchor ?? index;
    try {
      selection.addMany(await ensureRange(anchor, index), index);
    } catch (err) {
      if (deps.onError) deps.onError(err);
    }
  }

  function onClick(event) {
    const gridAction = closestIn(event.target, '[data-grid-action]', root);
    if (gridAction) {
      if (gridAction.dataset.gridAction === 'retry') reload();
      else if (deps.onClearFilters) deps.onClearFilters();
      return;
    }
    const card = cardOf(event.target);
    if (!card) return;
    const index = indexOf(card);
    const item = cache.getItem(index);
    if (!item) return;
    focusIndex = index;
    const button = closestIn(event.target, 'button[data-action]', card);
    if (button) {
      event.stopPropagation();
      const action = button.dataset.action;
      if (action === 'menu') deps.onMenu(item, { anchor: button, index });
      else deps.onAction(action, item, { anchor: button, index });
      return;
    }
    if (event.shiftKey && selection.get().active) { selectRangeTo(index); return; }
    if (selection.get().active || event.ctrlKey || event.metaKey) { selection.toggle(item.file_path, index); return; }
    deps.onOpen(item, index);
  }

  function onContextMenu(event) {
    const card = cardOf(event.target);
    if (!card) return;
    const item = cache.getItem(indexOf(card));
    if (!item) return;
    event.preventDefault();
    focusIndex = indexOf(card);
    deps.onMenu(item, { x: event.clientX, y: event.clientY, anchor: card, index: focusIndex });
  }

  function onKeyDown(event) {
    const card = cardOf(event.target);
    if (!card || event.target !== card) return;
    const index = indexOf(card);
    const item = cache.getItem(index);
    const total = cache.total ?? 0;
    const rowsPerPage = Math.max(1, Math.floor(viewport.clientHeight / layout.rowHeight));
    let next = null;
    if (['ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown', 'Home', 'End'].includes(event.key)) {
      next = moveIndex(index, event.key, layout.columns, total);
    } else if (event.key === 'PageDown') next = Math.min(total - 1, index + rowsPerPage * layout.columns);
    else if (event.key === 'PageUp') next = Math.max(0, index - rowsPerPage * layout.columns);
    if (next !== null) {
      event.preventDefault();
      if (event.shiftKey && selection.get().active) { focusAt(next); selectRangeTo(next); return; }
      focusAt(next);
      return;
    }
    if (!item) return;
    if (event.key === 'Enter') { event.preventDefault(); deps.onOpen(item, index); }
    else if (event.key === ' ') { event.preventDefault(); selection.toggle(item.file_path, index); }
    else if (event.key === 'ContextMenu' || (event.shiftKey && event.key === 'F10')) {
      event.preventDefault();
      deps.onMenu(item, { anchor: card, index });
    } else if (event.key === 'Delete') { event.preventDefault(); deps.onAction('delete', item, { anchor: card, index }); }
  }

  function onFocusIn(event) {
    const card = cardOf(event.target);
    if (card) focusIndex = indexOf(card);
  }

  function hasFiles(event) {
    return event.dataTransfer && [...event.dataTransfer.types].includes('Files');
  }

  function onDragOver(event) {
    if (!hasFiles(event) || !deps.onDropFiles) return;
    const card = cardOf(event.target);
    if (!card || !cache.getItem(indexOf(card))) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
    for (const el of canvas.querySelectorAll('.lm-card--drop')) if (el !== card) el.classList.remove('lm-card--drop');
    card.classList.add('lm-card--drop');
  }

  function onDragLeave(event) {
    const card = cardOf(event.target);
    if (card && !card.contains(event.relatedTarget)) card.classList.remove('lm-card--drop');
  }

  function onDrop(event) {
    const card = cardOf(event.target);
    if (!card || !hasFiles(event) || !deps.onDropFiles) return;
    event.preventDefault();
    card.classList.remove('lm-card--drop');
    const item = cache.getItem(indexOf(card));
    if (item) deps.onDropFiles(item, [...event.dataTransfer.files]);
  }

  function onDragStart(event) {
    const card = cardOf(event.target);
    const item = card && cache.getItem(indexOf(card));
    if (!item || !deps.onDragStart) { if (card) event.preventDefault(); return; }
    deps.onDragStart(item, event);
  }

  function onPointerOver(event) {
    const card = cardOf(event.target);
    if (!card || card.contains(event.relatedTarget)) return;
    const video = card.querySelector('.lm-card-video');
    if (video && !video.hidden) video.play().catch(() => {});
  }

  function onPointerOut(event) {
    const card = cardOf(event.target);
    if (!card || card.contains(event.relatedTarget)) return;
    const video = card.querySelector('.lm-card-video');
    if (video && !video.hidden) video.pause();
  }

  // A preview that arrives while its card waits in the overscan rows shows at once: its fade
  // would play unseen, and an opacity transition gives the image a layer of its own for its
  // duration (made and dropped again: the most costly frames of a steady scroll).
  function onMediaLoad(event) {
    const img = event.target;
    if (!img.classList || !img.classList.contains('lm-card-img')) return;
    const card = img.closest('.lm-card');
    const index = card ? card.__lmPos : -1;
    const offscreen = index >= 0 && (index < shownRange.firstVisible || index > shownRange.lastVisible);
    if (offscreen) img.classList.add('lm-card-img--instant');
    img.classList.add('lm-loaded');
  }

  function onMediaError(event) {
    const el = event.target;
    if (!(el instanceof HTMLImageElement || el instanceof HTMLVideoElement) || !el.getAttribute('src')) return;
    el.hidden = true;
    const card = el.closest('.lm-card');
    if (card) card.querySelector('.lm-card-placeholder').hidden = false;
  }

  // no layout read here: render() reads scrollTop once per frame, before it writes
  function onScroll() {
    lastScrollTime = performance.now();
    schedule();
  }

  // On a column (or view) change keep the first visible item at the top instead of the same pixel offset.
  function onResize() {
    const before = layout;
    const anchor = before.rowHeight ? Math.floor(viewport.scrollTop / before.rowHeight) * before.columns : 0;
    if (!relayout()) { schedule(); return; }
    if (anchor > 0 && (before.columns !== layout.columns || before.rowHeight !== layout.rowHeight)) {
      setCanvasHeight(cache.total ?? 0);
      viewport.scrollTop = Math.floor(anchor / layout.columns) * layout.rowHeight;
    }
    render();
  }
  const resizeObserver = new ResizeObserver(onResize);
  resizeObserver.observe(viewport);
  // the canvas too: a scrollbar appearing narrows it without resizing the viewport
  resizeObserver.observe(canvas);
  viewport.addEventListener('scroll', onScroll, { passive: true });
  root.addEventListener('click', onClick);
  canvas.addEventListener('contextmenu', onContextMenu);
  canvas.addEventListener('keydown', onKeyDown);
  canvas.addEventListener('focusin', onFocusIn);
  canvas.addEventListener('dragover', onDragOver);
  canvas.addEventListener('dragleave', onDragLeave);
  canvas.addEventListener('drop', onDrop);
  canvas.addEventListener('dragstart', onDragStart);
  canvas.addEventListener('mouseover', onPointerOver);
  canvas.addEventListener('mouseout', onPointerOut);
  canvas.addEventListener('load', onMediaLoad, true);
  canvas.addEventListener('error', onMediaError, true);
  const unsubs = [
    query.subscribe(() => reload()),
    selection.subscribe(schedule),
    settings.subscribe(schedule),
  ];

  relayout();
  reload();

  return {
    update: schedule,
    reload,
    refresh,
    focusAt,
    focusCurrent: () => focusAt(focusIndex),
    itemAt: (index) => cache.getItem(index),
    findLoaded: (filePath) => { const hit = cache.findByPath(filePath); return hit ? hit.item : null; },
    get total() { return cache.total; },
    get layout() { return layout; },
    /** 'grid' or 'list': how the cards are laid out now. */
    get mode() { return mode; },
    /** Lay out again after deps.view() changed its answer. */
    relayout: onResize,
    get viewport() { return viewport; },
    /** Loaded items whose cards are (at least partly) on screen. */
    visibleItems() {
      const range = visibleRange({ scrollTop: viewport.scrollTop, viewportHeight: viewport.clientHeight, layout, total: cache.total ?? 0, overscanRows: 0 });
      const out = [];
      for (let i = range.firstVisible; i <= range.lastVisible; i += 1) { const item = cache.getItem(i); if (item) out.push(item); }
      return out;
    },
    /** Apply a local change to a loaded item (optimistic edit or server echo). */
    patchItem(filePath, changes) {
      cache.replaceItem(filePath, (item) => ({ ...item, ...changes }));
      for (const el of active.values()) if (el.dataset.path === filePath) el.__lmItem = undefined;
      schedule();
    },
    destroy() {
      destroyed = true;
      cancelAnimationFrame(frame);
      clearTimeout(pumpTimer);
      clearTimeout(retryTimer);
      for (const ctrl of inflight.values()) ctrl.abort();
      resizeObserver.disconnect();
      unsubs.forEach((fn) => fn());
      root.replaceChildren();
      root.classList.remove('lm-grid', 'lm-grid--compact', 'lm-grid--loading', 'lm-grid--list');
    },
  };
}
