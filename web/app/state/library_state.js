/**
 * The stores one library view shares between its components: the listing query, the
 * selection (bulk mode) and the public settings. Created per view, never global.
 */
import { createStore } from './store.js';
import { defaultQuery } from '../lib/list_query.js';

export function createQueryStore(overrides = {}) {
  return createStore({ ...defaultQuery(), ...overrides });
}

/** Selection of models by file path, with the anchor index for shift-click ranges. */
export function createSelectionStore() {
  const store = createStore({ active: false, paths: new Set(), anchor: null });
  return {
    ...store,
    enter() { store.set({ active: true }); },
    exit() { store.set({ active: false, paths: new Set(), anchor: null }); },
    toggle(path, index) {
      const paths = new Set(store.get().paths);
      if (paths.has(path)) paths.delete(path); else paths.add(path);
      store.set({ active: true, paths, anchor: index });
    },
    addMany(list, anchor) {
      const paths = new Set(store.get().paths);
      for (const p of list) paths.add(p);
      store.set({ active: true, paths, anchor: anchor ?? store.get().anchor });
    },
    clear() { store.set({ paths: new Set(), anchor: null }); },
    has: (path) => store.get().paths.has(path),
    list: () => [...store.get().paths],
  };
}

export function createSettingsStore(initial = {}) {
  return createStore({ blur_mature_content: true, mature_blur_level: 'R', default_lora_strength: 1, ...initial });
}
