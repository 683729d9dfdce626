/**
 * Geometry of the virtualised grid: columns and card size for a width, and which item indexes
 * and result pages a scroll position needs. Pure arithmetic, so the grid stays O(visible).
 */

export function computeLayout({ width, minCardWidth = 180, gap = 12, aspect = 4 / 3, maxColumns = 12 }) {
  const usable = Math.max(0, width);
  const columns = Math.max(1, Math.min(maxColumns, Math.floor((usable + gap) / (minCardWidth + gap))));
  const cardWidth = Math.max(1, Math.floor((usable - gap * (columns - 1)) / columns));
  const cardHeight = Math.round(cardWidth * aspect);
  return { columns, cardWidth, cardHeight, rowHeight: cardHeight + gap, gap };
}

export function totalHeight(layout, total) {
  const rows = Math.ceil(total / layout.columns);
  return rows > 0 ? rows * layout.rowHeight - layout.gap : 0;
}

/** [start, end) item indexes to render for a viewport, with whole rows of overscan. */
export function visibleRange({ scrollTop, viewportHeight, layout, total, overscanRows = 2 }) {
  if (!total) return { start: 0, end: 0, firstVisible: 0, lastVisible: -1 };
  const firstRow = Math.max(0, Math.floor(scrollTop / layout.rowHeight));
  const lastRow = Math.floor((scrollTop + viewportHeight) / layout.rowHeight);
  const startRow = Math.max(0, firstRow - overscanRows);
  const endRow = lastRow + overscanRows + 1;
  return {
    start: Math.min(total, startRow * layout.columns),
    end: Math.min(total, endRow * layout.columns),
    firstVisible: Math.min(total - 1, firstRow * layout.columns),
    lastVisible: Math.min(total - 1, (lastRow + 1) * layout.columns - 1),
  };
}

/** Pages (1-based) that hold the indexes [start, end). */
export function pagesForRange(start, end, pageSize) {
  if (end <= start) return [];
  const first = Math.floor(start / pageSize) + 1;
  const last = Math.floor((end - 1) / pageSize) + 1;
  const pages = [];
  for (let p = first; p <= last; p += 1) pages.push(p);
  return pages;
}

/** Pixel offset of an item's card inside the grid canvas. */
export function itemPosition(layout, index) {
  const row = Math.floor(index / layout.columns);
  const col = index % layout.columns;
  return { x: col * (layout.cardWidth + layout.gap), y: row * layout.rowHeight };
}

/** Index reached from `index` by an arrow key, clamped to [0, total). */
export function moveIndex(index, key, columns, total) {
  const delta = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -columns, ArrowDown: columns }[key] ?? 0;
  if (key === 'Home') return 0;
  if (key === 'End') return total - 1;
  const next = index + delta;
  if (next < 0 || next >= total) return index;
  return next;
}
