/**
 * Result pages of one listing query, cached by page number with a small LRU bound.
 * Pure bookkeeping (no fetch): the grid asks which pages are missing and stores answers.
 */

export class PageCache {
  constructor({ pageSize = 100, capacity = 80 } = {}) {
    this.pageSize = pageSize;
    this.capacity = capacity;
    this.pages = new Map();
    this.total = null;
    this.generation = 0;
  }

  /** Forget everything (a new query); bumps the generation so late answers are ignored. */
  reset() {
    this.pages.clear();
    this.total = null;
    this.generation += 1;
  }

  /** Keep pages but mark them stale (live update); they are refetched when next needed. */
  markStale() {
    for (const entry of this.pages.values()) entry.stale = true;
    this.generation += 1;
  }

  setPage(page, items, total) {
    this.pages.delete(page);
    this.pages.set(page, { items, stale: false });
    if (Number.isFinite(total)) this.total = total;
    while (this.pages.size > this.capacity) {
      const oldest = this.pages.keys().next().value;
      this.pages.delete(oldest);
    }
  }

  pageOf(index) {
    return Math.floor(index / this.pageSize) + 1;
  }

  getItem(index) {
    const entry = this.pages.get(this.pageOf(index));
    return entry ? entry.items[index % this.pageSize] ?? null : null;
  }

  hasFresh(page) {
    const entry = this.pages.get(page);
    return Boolean(entry && !entry.stale);
  }

  /** Re-insert a page at the LRU tail because it is on screen. */
  touch(page) {
    const entry = this.pages.get(page);
    if (entry) { this.pages.delete(page); this.pages.set(page, entry); }
  }

  /** Find a loaded item by path; returns {index, item} or null. */
  findByPath(filePath) {
    for (const [page, entry] of this.pages) {
      const i = entry.items.findIndex((it) => it.file_path === filePath);
      if (i >= 0) return { index: (page - 1) * this.pageSize + i, item: entry.items[i] };
    }
    return null;
  }

  /** Replace a loaded item in place (optimistic edit or server echo). */
  replaceItem(filePath, updater) {
    for (const entry of this.pages.values()) {
      const i = entry.items.findIndex((it) => it.file_path === filePath);
      if (i >= 0) entry.items[i] = updater(entry.items[i]);
    }
  }
}
