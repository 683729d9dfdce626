/**
 * The sidebar tab's content: a header drawn as the running frontend draws its own tabs'
 * (1.2x toolbar or 1.5x title bar with a close button) with "open full library", the type
 * switcher (LoRAs / checkpoints / embeddings), the shared library panel (compact: folding
 * filters, cards or list) and a hint saying what "Add" will do with the canvas selection.
 * Owns the DOM under the container ComfyUI hands to the tab's render() (menus, popovers and
 * toasts float from a layer at its end) and the shared panel modules, loaded on first open
 * (with our stylesheet). It puts nothing into the graph
 * itself (graph, prompt and drag-and-drop come in as deps), installs no document listeners and
 * must not import ComfyUI's scripts.
 */
import { h } from '../components/dom.js';
import { createIcon } from '../components/icon.js';
import { SETTING } from './settings.js';
import { itemName, nodeLabel } from './graph.js';
import { libraryLang } from './texts.js';

/** The sidebar's root class: every sidebar rule of styles/library.css is scoped under it. */
export const ROOT_CLASS = 'lm-comfy-sidebar';

// the last chosen type and view (cards, list or by width) survive closing the tab and reloading
const TYPE_STORAGE_KEY = 'lm.comfy.sidebar.type';
const VIEW_STORAGE_KEY = 'lm.comfy.sidebar.view';

function stored(key) {
  try { return localStorage.getItem(key); } catch { return null; /* storage blocked */ }
}

function store(key, value) {
  try {
    if (value === null) localStorage.removeItem(key); else localStorage.setItem(key, value);
  } catch { /* private mode: the choice is simply not kept */ }
}

/** The three listing types the switcher always offers, with the library key of their label
 * (the other types join them when they have models: `loadExtraTypes`). */
export const TYPES = Object.freeze([
  { modelType: 'lora', prefix: 'loras', label: 'types.lora' },
  { modelType: 'checkpoint', prefix: 'checkpoints', label: 'types.checkpoint' },
  { modelType: 'embedding', prefix: 'embeddings', label: 'types.embedding' },
]);

// resolved against this file: /lm/static/comfyui/ → /lm/static/styles/ (under ComfyUI's base path)
const STYLESHEET = new URL('../styles/library.css', import.meta.url).href;

/** Add our stylesheet to the document once; resolves when it applies (or failed to load), so
 * the panel is first laid out with its styles. A link found already there counts as applied. */
function ensureStyles() {
  if (document.querySelector('link[data-lm-styles]')) return Promise.resolve();
  const link = document.createElement('link');
  link.rel = 'stylesheet';
  link.href = STYLESHEET;
  link.dataset.lmStyles = '1';
  const applied = new Promise((resolve) => {
    link.addEventListener('load', resolve, { once: true });
    link.addEventListener('error', resolve, { once: true });
  });
  document.head.append(link);
  return applied;
}

/** The shared modules of web/app the panel needs, imported on first use (not at ComfyUI's
 * start-up: most sessions never open the tab); a failed load is retried on the next open. */
function createLibraryLoader() {
  let loaded = null;
  return function load() {
    if (!loaded) {
      loaded = Promise.all([
        import('../api/client.js'),
        import('../i18n/i18n.js'),
        import('../components/library_panel.js'),
        import('../components/toasts.js'),
        import('../components/context_menu.js'),
        import('../state/library_state.js'),
        ensureStyles(),
      ]).then(([client, i18n, panel, toasts, menu, state]) => ({
        createApiClient: client.createApiClient,
        createI18n: i18n.createI18n,
        createLibraryPanel: panel.createLibraryPanel,
        createToasts: toasts.createToasts,
        createContextMenu: menu.createContextMenu,
        createQueryStore: state.createQueryStore,
        createSettingsStore: state.createSettingsStore,
      }));
      loaded.catch(() => { loaded = null; });
    }
    return loaded;
  };
}

/**
 * deps: {fetchApi(url, init) (ComfyUI's api.fetchApi), basePath(), settings, texts ({load, tr}),
 *        toasts (createComfyToasts), graph, prompt, dragDrop, events ({on}), openLibrary(),
 *        headerStyle() ('classic' | 'modern'), closeTab(), missingModels? (createMissingModels)}.
 * Returns {render(container), destroy(), reload(), syncSettings(), remount(), prefix()}: the
 * tab's render/destroy and what the entry forwards from settings and socket events.
 */
export function createSidebar(deps) {
  const loadLibrary = createLibraryLoader();
  // the view of the open tab (ComfyUI renders one tab at a time; render() gets a fresh element)
  let view = null;

  function render(container) {
    if (view) view.destroy();
    view = mountView(container, deps, loadLibrary);
  }

  function destroy() {
    if (view) view.destroy();
    view = null;
  }

  return {
    render,
    destroy,
    reload: () => view?.reload(),
    syncSettings: () => view?.syncSettings(),
    remount: () => view?.remount(),
    /** The listing prefix shown, 'loras' while no panel is up (what "open full library" opens). */
    prefix: () => view?.prefix() ?? 'loras',
  };
}

/** Show a placeholder in `container` at once, then the panel when the shared modules and
 * texts arrived. Everything but destroy() is a no-op until then. */
function mountView(container, deps, loadLibrary) {
  const { fetchApi, basePath, settings, texts } = deps;
  // the frontend hands over an auto-height div; the virtualised grid needs a definite height
  container.style.height = '100%';
  const root = h('div', { class: ROOT_CLASS, dataset: { lmSidebar: '1' } });
  container.replaceChildren(root);
  const loading = h('div', { class: 'lm-cs-loading', text: '…', role: 'status' });
  root.append(loading);
  // menus, popovers and toasts float from here, out of the panel's clipping boxes; nothing
  // around it may be a containing block for position: fixed (no transform, contain or
  // container-type), so they are placed in the viewport
  const layer = h('div', { class: 'lm-layer' });

  let live = null;
  const view = {
    destroyed: false,
    destroy() {
      view.destroyed = true;
      if (live) live.destroy();
      container.replaceChildren();
    },
    reload: () => live?.reload(),
    syncSettings: () => live?.syncSettings(),
    remount: () => { if (!view.destroyed) live?.remount(); },
    prefix: () => live?.prefix(),
  };

  async function start() {
    let lib;
    try {
      [lib] = await Promise.all([loadLibrary(), texts.load()]);
    } catch (err) {
      loading.textContent = `${texts.tr('title')}: ${err && err.message ? err.message : err}`;
      return;
    }
    if (view.destroyed) return;
    loading.remove();
    // previews in answers ('/api/lm/previews?...') are rooted at ComfyUI's base path by the client
    const client = lib.createApiClient({ base: '/lm', fetchImpl: fetchApi, urlRoot: basePath() });
    const lang = libraryLang(settings.get('Comfy.Locale', 'en'));
    const i18n = lib.createI18n({ lang });
    try { await i18n.load(client, lang); } catch { /* keys fall back to themselves */ }
    if (view.destroyed) return;
    live = createView(root, layer, { ...deps, lib, client, i18n });
  }
  start().catch((err) => console.error('[model library] sidebar failed', err));
  return view;
}

/** Where the sidebar's menus may spread: from its own left edge to the window's right one when
 * it sits on the left (never over the icon bar), mirrored on the right. */
function boundsBeside(root) {
  const box = root.getBoundingClientRect();
  const width = document.documentElement.clientWidth || window.innerWidth;
  return box.left + box.width / 2 <= width / 2 ? { left: box.left, right: width } : { left: 0, right: box.right };
}

/** The loaded sidebar in `root` (its floating parts in `layer`): header, type switcher, the
 * panel of the current type, the hint. */
function createView(root, layer, env) {
  const { lib, client, i18n, settings, texts, toasts, graph, prompt, dragDrop, events, openLibrary } = env;
  const { tr } = texts;
  const t = i18n.t;
  const panelSettings = lib.createSettingsStore(settings.panelSettings());
  // one query store per type: switching back keeps that type's search, filters and sort
  const queries = new Map();
  // the main three, then the other types that have models (VAEs, ControlNets ...; issue 14),
  // learnt from /api/lm/status once the view is up
  const types = [...TYPES];
  let current = types.find((x) => x.prefix === stored(TYPE_STORAGE_KEY)) || types[0];
  let viewPref = ['grid', 'list'].includes(stored(VIEW_STORAGE_KEY)) ? stored(VIEW_STORAGE_KEY) : null;
  let filtersOpen = false;
  let panel = null;
  let lastHint = '';

  const headerStyle = env.headerStyle ? env.headerStyle() : 'classic';
  const iconButton = (what, label, icon) => h('button', {
    type: 'button', class: 'lm-cs-iconbtn', dataset: { cs: what }, title: label, 'aria-label': label,
  }, createIcon(icon, { size: 16 }));
  const title = h('h3', { class: 'lm-cs-title', text: tr('title'), title: tr('title') });
  const head = h('div', { class: `lm-cs-head lm-cs-head--${headerStyle}`, dataset: { header: headerStyle } },
    title,
    h('div', { class: 'lm-cs-tools' }, iconButton('open', tr('openFullLibrary'), 'external')),
    headerStyle === 'modern' && env.closeTab ? iconButton('close', tr('close'), 'close') : null);

  const typeSelect = h('select', { class: 'lm-select lm-cs-type-select', 'aria-label': tr('typesLabel'), dataset: { cs: 'type-select' } },
    ...types.map((type) => h('option', { value: type.prefix, text: t(type.label) })));
  const typeTab = (type) => h('button', {
    type: 'button', role: 'tab', class: 'lm-cs-type', id: `lm-cs-tab-${type.prefix}`,
    'aria-controls': 'lm-cs-body', dataset: { csType: type.prefix }, text: t(type.label), title: t(type.label),
  });
  const tabs = h('div', { class: 'lm-cs-types', role: 'tablist', 'aria-label': tr('typesLabel') },
    ...types.map(typeTab));
  const switcher = h('div', { class: 'lm-cs-switch' }, tabs, typeSelect);
  const body = h('div', { class: 'lm-cs-body', id: 'lm-cs-body', role: 'tabpanel' });
  const hintText = h('span');
  // what "Add" will do with the current canvas selection (polled: LiteGraph has no selection event in 1.27)
  const hint = h('div', { class: 'lm-cs-hint', role: 'note' }, createIcon('info', { size: 12 }), hintText);
  const menuHost = h('div');
  const toastHost = h('div');
  // "Missing in this workflow" (issue 14): shown while the loaded workflow lacks models
  const missingHost = h('div', { class: 'lm-cs-missing-host', style: { display: 'contents' } });
  root.append(head, switcher, missingHost, body, hint, layer);
  const missingSection = env.missingModels ? env.missingModels.mount(missingHost) : null;
  layer.append(menuHost, toastHost);

  const panelToasts = lib.createToasts(toastHost, { t });
  const comfyToasts = toasts.forPanel(() => panelToasts);
  const bounds = () => boundsBeside(root);
  const menu = lib.createContextMenu(menuHost, { t, bounds });

  // the tabs while their labels fit (tighter before giving up), else a drop-down (a narrow
  // sidebar, a long translation); their natural widths are measured once, not stretched
  let needed = null;
  function measureTabs(tight) {
    switcher.classList.toggle('lm-cs-switch--tight', tight);
    const list = [...tabs.querySelectorAll('.lm-cs-type')];
    return list.reduce((sum, tab) => sum + tab.offsetWidth, 0) + 2 * (list.length - 1) + 6;
  }
  /** Offer the other types that have models indexed, in the table's order. */
  async function loadExtraTypes() {
    let status = null;
    try { status = await client.get('/status'); } catch { return; /* the three main types stay */ }
    const known = new Set(types.map((x) => x.modelType));
    for (const [modelType, info] of Object.entries((status && status.types) || {})) {
      if (known.has(modelType) || !info.prefix || !(info.roots || []).length || !info.total) continue;
      const type = { modelType, prefix: info.prefix, label: `types.${modelType}` };
      types.push(type);
      typeSelect.append(h('option', { value: type.prefix, text: t(type.label) }));
      tabs.append(typeTab(type));
    }
    if (types.length === TYPES.length) return;
    needed = null;
    fitTypes();
    const saved = types.find((x) => x.prefix === stored(TYPE_STORAGE_KEY));
    if (saved && saved !== current) { selectType(saved.prefix); return; }
    for (const tab of tabs.querySelectorAll('.lm-cs-type')) {
      const on = tab.dataset.csType === current.prefix;
      tab.setAttribute('aria-selected', String(on));
      tab.tabIndex = on ? 0 : -1;
    }
  }

  function fitTypes() {
    const room = switcher.clientWidth;
    if (!room) return;
    if (!needed) {
      switcher.classList.remove('lm-cs-switch--select');
      switcher.classList.add('lm-cs-switch--measure');
      needed = { normal: measureTabs(false), tight: measureTabs(true) };
      switcher.classList.remove('lm-cs-switch--measure');
    }
    switcher.classList.toggle('lm-cs-switch--tight', needed.normal > room);
    switcher.classList.toggle('lm-cs-switch--select', needed.tight > room);
  }

  // the sidebar's width class (CSS: narrow sidebars drop the result count); the sidebar is no
  // CSS size container, which would trap the fixed menus inside it
  function onResize() {
    const width = root.clientWidth;
    root.dataset.lmWidth = width < 180 ? 'tiny' : width < 230 ? 'narrow' : width < 300 ? 'medium' : 'wide';
    fitTypes();
  }
  const resizeObserver = new ResizeObserver(onResize);
  resizeObserver.observe(root);

  function cardFor(item) {
    for (const card of body.querySelectorAll('.lm-card')) if (card.dataset.path === item.file_path) return card;
    return null;
  }

  /** The panel's "Add": embeddings go into the prompt; a model with a loader of its kind
   * selected asks whether to replace that loader's model or add (chain) a new node. */
  function add(item) {
    if (item.model_type === 'embedding') { prompt.insertPromptText(prompt.syntaxOf(item)); return; }
    // a selected LoRA Loader/Stacker (Model Library) takes the LoRA into its list
    const listNode = graph.loraListTarget(item);
    if (listNode) { graph.addToLoraList(listNode, item); return; }
    const target = graph.applyTarget(item);
    if (!target) {
      if (graph.addModelNode(item)) toasts.toast('success', tr('added', { name: itemName(item) }), 2500);
      return;
    }
    // a loader of this kind is selected: chaining a new one and replacing its model both make sense
    const source = item.model_type === 'lora' ? graph.chainSource() : null;
    const card = cardFor(item);
    const anchor = card?.querySelector('[data-action="add"]') || card || body;
    const box = anchor.getBoundingClientRect();
    menu.open({
      // open towards the canvas rather than over ComfyUI's icon bar
      anchor, x: box.left, y: box.bottom + 4,
      label: tr('choose', { name: itemName(item) }),
      entries: [
        { id: 'apply', label: tr('applyTo', { node: nodeLabel(target) }), icon: 'refresh' },
        { id: 'add', label: source ? tr('addAfter', { node: nodeLabel(source.node) }) : tr('addNew'), icon: 'plus' },
      ],
      select(id) {
        if (id === 'apply') graph.applyToNode(target, item);
        else if (graph.addModelNode(item)) toasts.toast('success', tr('added', { name: itemName(item) }), 2500);
      },
    });
  }

  function mountPanel() {
    if (panel) panel.destroy();
    const host = h('div', { class: 'lm-cs-panel' });
    body.replaceChildren(host);
    if (!queries.has(current.prefix)) queries.set(current.prefix, lib.createQueryStore());
    panel = lib.createLibraryPanel(host, {
      api: client, prefix: current.prefix, modelType: current.modelType, t, lang: () => i18n.lang,
      toasts: comfyToasts, events, settings: panelSettings, query: queries.get(current.prefix), compact: true,
      pageSize: Number(settings.get(SETTING.pageSize, 100)),
      overlayHost: layer, menuBounds: bounds,
      view: viewPref,
      onViewChange(next) { viewPref = next; store(VIEW_STORAGE_KEY, next); },
      onFiltersToggle(open) { filtersOpen = open; },
      onAdd: add, onDragStart: dragDrop.start,
    });
    if (filtersOpen) panel.setFiltersOpen(true);
    for (const tab of tabs.querySelectorAll('.lm-cs-type')) {
      const on = tab.dataset.csType === current.prefix;
      tab.setAttribute('aria-selected', String(on));
      tab.tabIndex = on ? 0 : -1;
    }
    typeSelect.value = current.prefix;
    body.setAttribute('aria-labelledby', `lm-cs-tab-${current.prefix}`);
    updateHint();
  }

  function selectType(prefix, focus = false) {
    const next = types.find((x) => x.prefix === prefix);
    if (!next) return;
    if (next !== current) {
      current = next;
      store(TYPE_STORAGE_KEY, prefix);
      mountPanel();
    }
    if (focus) tabs.querySelector(`[data-cs-type="${prefix}"]`)?.focus();
  }

  function describeTarget() {
    if (current.modelType === 'embedding') {
      const field = prompt.focusedField();
      const node = field ? prompt.nodeOfField(field) : null;
      return field ? tr('hintInsert', { node: node ? nodeLabel(node) : '…' }) : tr('hintInsertNone');
    }
    const probe = { model_type: current.modelType, sub_type: '' };
    const target = graph.applyTarget(probe) || (current.modelType === 'checkpoint' ? graph.applyTarget({ ...probe, sub_type: 'diffusion_model' }) : null);
    if (target) return current.modelType === 'lora' && graph.chainSource() ? tr('hintApply', { node: nodeLabel(target) }) : tr('hintApplyOnly', { node: nodeLabel(target) });
    const source = current.modelType === 'lora' ? graph.chainSource() : null;
    return source ? tr('hintAfter', { node: nodeLabel(source.node) }) : tr('hintNew');
  }

  function updateHint() {
    const text = describeTarget();
    if (text !== lastHint) { lastHint = text; hintText.textContent = text; hint.title = text; }
  }
  const hintTimer = setInterval(updateHint, 400);

  function onClick(event) {
    const type = event.target.closest?.('[data-cs-type]');
    if (type && tabs.contains(type)) { selectType(type.dataset.csType); return; }
    const what = event.target.closest?.('[data-cs]')?.dataset.cs;
    if (what === 'open') openLibrary();
    else if (what === 'close') env.closeTab();
  }

  function onChange(event) {
    if (event.target === typeSelect) selectType(typeSelect.value);
  }

  function onKeyDown(event) {
    const tab = event.target.closest?.('[data-cs-type]');
    if (tab && ['ArrowLeft', 'ArrowRight', 'Home', 'End'].includes(event.key)) {
      event.preventDefault();
      const index = types.findIndex((x) => x.prefix === tab.dataset.csType);
      const next = event.key === 'Home' ? 0 : event.key === 'End' ? types.length - 1
        : (index + (event.key === 'ArrowRight' ? 1 : types.length - 1)) % types.length;
      selectType(types[next].prefix, true);
    }
    const card = event.target.closest?.('.lm-card');
    if (card && event.target === card && (event.key === 'a' || event.key === 'A') && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      card.querySelector('[data-action="add"]')?.click();
    }
    stopShortcuts(event);
  }

  // keep ComfyUI's single-key shortcuts (R, Q, Delete…) from firing while we have focus
  function stopShortcuts(event) {
    if (!event.ctrlKey && !event.metaKey && !event.altKey && event.key !== 'Escape') event.stopPropagation();
  }

  root.addEventListener('click', onClick);
  root.addEventListener('change', onChange);
  root.addEventListener('keydown', onKeyDown);
  layer.addEventListener('keydown', stopShortcuts);
  mountPanel();
  onResize();
  loadExtraTypes();

  return {
    reload: () => panel && panel.reload(),
    syncSettings: () => panelSettings.set(settings.panelSettings()),
    remount: mountPanel,
    prefix: () => current.prefix,
    destroy() {
      clearInterval(hintTimer);
      resizeObserver.disconnect();
      root.removeEventListener('click', onClick);
      root.removeEventListener('change', onChange);
      root.removeEventListener('keydown', onKeyDown);
      layer.removeEventListener('keydown', stopShortcuts);
      if (panel) panel.destroy();
      missingSection?.destroy();
      menu.destroy();
      panelToasts.destroy();
    },
  };
}
