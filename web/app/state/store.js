/**
 * A minimal observable store: get a snapshot, patch it, subscribe to changes.
 * Stores hold plain values only; they never fetch or touch the DOM.
 */

export function createStore(initial) {
  let state = initial;
  const listeners = new Set();
  return {
    get: () => state,
    /** Shallow-merge `patch` (or the result of `patch(state)`) and notify subscribers. */
    set(patch) {
      const next = typeof patch === 'function' ? patch(state) : patch;
      if (!next) return;
      const prev = state;
      state = { ...state, ...next };
      for (const fn of [...listeners]) fn(state, prev);
    },
    replace(next) {
      const prev = state;
      state = next;
      for (const fn of [...listeners]) fn(state, prev);
    },
    subscribe(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
  };
}
