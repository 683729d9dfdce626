/**
 * The one place that knows ComfyUI frontends differ: everything else calls the current (1.5x)
 * public extension and graph APIs, and this module falls back to what frontend 1.27 offers
 * where those are missing (the change tracker's `checkState`, `app.graph`, the old header).
 * It holds no state and must not import ComfyUI's scripts: `app` comes in as a dep.
 */

// the frontend from which the sidebar header is the 1.5x one (64 px, bold title case, close
// button) instead of the PrimeVue toolbar with an upper-case 12 px title of 1.2x. 1.27 has the
// old one, 1.58 the new; the redesign shipped in between (taken as 1.30, the 1.3x series).
const MODERN_HEADER_FROM = [1, 30];

/** '1.27.10' → [1, 27, 10] (missing parts are 0; an unknown version is [0, 0, 0]). */
export function parseVersion(text) {
  const parts = String(text || '').split('.').map((p) => parseInt(p, 10));
  return [0, 1, 2].map((i) => (Number.isFinite(parts[i]) ? parts[i] : 0));
}

/** Whether version `a` is at least `b` (arrays of numbers). */
export function atLeast(a, b) {
  for (let i = 0; i < Math.max(a.length, b.length); i += 1) {
    const x = a[i] || 0;
    const y = b[i] || 0;
    if (x !== y) return x > y;
  }
  return true;
}

/** A graph item that is a node (selections also hold groups and reroutes). */
export const isNode = (item) => Boolean(item) && Array.isArray(item.inputs) && Array.isArray(item.outputs) && 'type' in item;

/** deps: {app}. */
export function createCompat({ app }) {
  // the frontend sets this global from its build (App.vue) in 1.2x and 1.5x alike
  const version = () => parseVersion(globalThis.__COMFYUI_FRONTEND_VERSION__);

  return {
    version,
    /** 'modern' (1.5x: 64 px, bold title case, close button) or 'classic' (1.2x toolbar). */
    headerStyle: () => (atLeast(version(), MODERN_HEADER_FROM) ? 'modern' : 'classic'),

    /** The graph shown on the canvas (a subgraph while one is open), else the root graph;
     * 1.5x calls the root `rootGraph` (its `graph` is deprecated), 1.27 only has `graph`. */
    currentGraph() {
      const canvasGraph = app.canvas?.graph;
      if (canvasGraph) return canvasGraph;
      return 'rootGraph' in app ? app.rootGraph : app.graph;
    },

    /** Let the workflow's change tracker record an edit (undo, the "modified" mark): 1.5x
     * `captureCanvasState`, 1.27 `checkState` (deprecated and warning in 1.5x). */
    captureChange() {
      const tracker = app.extensionManager?.workflow?.activeWorkflow?.changeTracker;
      if (!tracker) return;
      if (typeof tracker.captureCanvasState === 'function') tracker.captureCanvasState();
      else if (typeof tracker.checkState === 'function') tracker.checkState();
    },

    /** The settings store: extensionManager.setting (1.27 and 1.5x), or for older frontends
     * the deprecated app.ui.settings; null before ComfyUI's setup(). */
    settingStore() {
      const store = app.extensionManager?.setting;
      if (store) return { get: (id) => store.get(id) };
      const legacy = app.ui?.settings;
      return legacy?.getSettingValue ? { get: (id) => legacy.getSettingValue(id) } : null;
    },

    /** Register a sidebar tab through the sidebarTab store (1.27 and 1.5x; the top-level
     * registerSidebarTab is deprecated and only used where the store is missing). */
    registerSidebarTab(tab) {
      const manager = app.extensionManager;
      if (manager?.sidebarTab?.registerSidebarTab) manager.sidebarTab.registerSidebarTab(tab);
      else manager.registerSidebarTab(tab);
    },
  };
}
