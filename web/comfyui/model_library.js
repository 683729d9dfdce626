/**
 * ComfyUI entry point of the model library: registers one extension with the sidebar tab,
 * the "Open model library" command and menu entry, settings, socket relays and toasts, and
 * puts models into the workflow (add / apply / insert). It mounts the shared panel from
 * web/app (served at /lm/static) and must not import anything else outside ComfyUI's shims.
 */
import { app } from '../../scripts/app.js';
import { api } from '../../scripts/api.js';

const EXTENSION = 'ModelLibrary.Sidebar';
const TAB_ID = 'lm-model-library';
const DRAG_MIME = 'application/x-lm-model';
const ROOT_CLASS = 'lm-comfy-sidebar';
const TYPE_STORAGE_KEY = 'lm.comfy.sidebar.type';

/** ComfyUI setting ids (translated through locales/<lang>/settings.json). */
export const SETTING = Object.freeze({
  strength: 'ModelLibrary.General.DefaultLoraStrength',
  wire: 'ModelLibrary.General.WireAfterSelection',
  blur: 'ModelLibrary.General.BlurMatureContent',
  blurLevel: 'ModelLibrary.General.BlurLevel',
  newTab: 'ModelLibrary.General.OpenInNewTab',
  pageSize: 'ModelLibrary.General.PageSize',
});

/** Command id (label in locales/<lang>/commands.json under `ModelLibrary_Open`). */
export const COMMAND_OPEN = 'ModelLibrary.Open';

/** The three listing types the switcher offers, with the library key of their label. */
const TYPES = Object.freeze([
  { modelType: 'lora', prefix: 'loras', label: 'types.lora' },
  { modelType: 'checkpoint', prefix: 'checkpoints', label: 'types.checkpoint' },
  { modelType: 'embedding', prefix: 'embeddings', label: 'types.embedding' },
]);

/** Socket events the backend forwards as `lm.<type>`; listened to from setup() on. */
const EVENT_TYPES = Object.freeze([
  'models_changed', 'init_progress', 'hash_progress', 'civitai_fetch_progress',
  'auto_organize_progress', 'download_progress',
]);

/** Loader nodes per model kind: node type, the widget holding the model, what "Apply" targets. */
const LOADERS = Object.freeze({
  lora: { type: 'LoraLoader', widget: 'lora_name' },
  loraModelOnly: { type: 'LoraLoaderModelOnly', widget: 'lora_name' },
  checkpoint: { type: 'CheckpointLoaderSimple', widget: 'ckpt_name' },
  diffusion_model: { type: 'UNETLoader', widget: 'unet_name' },
});

/** English texts; locales/<lang>/main.json `modelLibrary` overrides them per language. */
const DEFAULT_TEXT = Object.freeze({
  title: 'Model Library',
  tooltip: 'Model Library (LoRAs, checkpoints, embeddings)',
  label: 'Models',
  openFullLibrary: 'Open full library',
  typesLabel: 'Model type',
  added: 'Added {name} to the workflow.',
  applied: 'Set {name} on the selected node.',
  inserted: 'Inserted {name}.',
  noTarget: 'Select a loader node or a text field first.',
  hintNew: 'Add creates a new node · drag a card onto the canvas or a prompt',
  hintAfter: 'Add wires the new node after “{node}”',
  hintApply: 'Add: chain after or apply to “{node}”',
  hintApplyOnly: 'Add: apply to “{node}” or create a new node',
  hintInsert: 'Add inserts at the cursor in “{node}”',
  hintInsertNone: 'Click into a prompt box, then add an embedding',
  choose: 'Add “{name}”',
  addAfter: 'Add a new node after “{node}”',
  addNew: 'Add as a new node',
  applyTo: 'Apply to “{node}”',
  notListed: '{name} is not in ComfyUI\'s list yet: refresh node definitions (R) if the node shows it as missing.',
  nodeMissing: 'ComfyUI has no “{type}” node.',
  fetchDone: 'CivitAI: {updated} of {total} models updated.',
  fetchFailed: 'CivitAI refresh stopped: {error}',
  downloadDone: 'Downloaded {name}.',
  downloadFailed: 'Download failed: {name}',
  organizeDone: 'Auto-organize finished.',
});

const BLUR_LEVELS = ['PG13', 'R', 'X', 'XXX'];

export { DEFAULT_TEXT };

// ---------------------------------------------------------------------------------------
// small pure helpers (exported for the contract test page)

/** Where ComfyUI is served ('' at the root, '/comfy' behind a proxy), from api.apiURL. */
export function basePath() {
  const apiRoot = new URL(api.apiURL(''), location.href).pathname.replace(/\/+$/, '');
  return apiRoot.replace(/\/api$/, '');
}

/** The full library page of a listing prefix (ComfyUI itself serves `/embeddings`). */
export function libraryUrl(prefix = 'loras') {
  const path = prefix === 'embeddings' ? `/lm/${prefix}` : `/${prefix}`;
  return new URL(`${basePath()}${path}`, location.origin).href;
}

/** ComfyUI's locale code → ours (ComfyUI says 'zh', our locales folder is 'zh-CN'). */
export function libraryLang(comfyLocale) {
  const code = String(comfyLocale || 'en');
  if (code === 'zh' || code.startsWith('zh-')) return 'zh-CN';
  return code.split('-')[0] || 'en';
}

const slash = (value) => String(value).replace(/\\/g, '/');

/**
 * The combo value ComfyUI expects for a model: the entry of `choices` naming the same file
 * (ComfyUI lists paths with the OS separator), else our relative path in that separator.
 */
export function comfyValue(relativePath, choices) {
  const list = Array.isArray(choices) ? choices : [];
  const wanted = slash(relativePath);
  const hit = list.find((entry) => typeof entry === 'string' && slash(entry) === wanted);
  if (hit !== undefined) return { value: hit, listed: true };
  const backslash = list.some((entry) => typeof entry === 'string' && entry.includes('\\') && !entry.includes('/'));
  return { value: backslash ? wanted.replace(/\//g, '\\') : wanted, listed: false };
}

/** Insert `text` into `value` replacing [start, end), with ", " separators where needed. */
export function spliceWithSeparators(value, start, end, text) {
  let before = value.slice(0, start);
  const after = value.slice(end);
  let lead = '';
  if (before.trim() && !/[,(]\s*$/.test(before)) { before = before.trimEnd(); lead = ', '; } else if (/,$/.test(before)) lead = ' ';
  const trail = after.trim() && !/^\s*[,)]/.test(after) ? (/^\s/.test(after) ? ',' : ', ') : '';
  return { value: before + lead + text + trail + after, caret: before.length + lead.length + text.length };
}

function interpolate(text, params) {
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (m, key) => (params[key] === undefined ? m : String(params[key])));
}

function loaderFor(item) {
  if (item.model_type === 'lora') return LOADERS.lora;
  if (item.model_type === 'checkpoint') return item.sub_type === 'diffusion_model' ? LOADERS.diffusion_model : LOADERS.checkpoint;
  return null;
}

function parseTips(value) {
  if (!value) return {};
  if (typeof value === 'object') return value;
  try { const parsed = JSON.parse(value); return parsed && typeof parsed === 'object' ? parsed : {}; } catch { return {}; }
}

function itemName(item) { return item.model_name || item.file_name || item.relative_path || ''; }

// ---------------------------------------------------------------------------------------
// ComfyUI access (all optional-chained: the API moved between frontend 1.27 and 1.5x)

const settingApi = () => app.extensionManager?.setting;

function getSetting(id, fallback) {
  try {
    const value = settingApi() ? settingApi().get(id) : app.ui?.settings?.getSettingValue?.(id);
    return value === undefined || value === null ? fallback : value;
  } catch {
    return fallback;
  }
}

let messages = {};
let messagesLoaded = null;

/** Our main.json texts for every language, from ComfyUI's merged custom-node i18n. */
function loadMessages() {
  if (!messagesLoaded) {
    messagesLoaded = api.fetchApi('/i18n')
      .then((res) => (res.ok ? res.json() : {}))
      .then((data) => { messages = data && typeof data === 'object' ? data : {}; })
      .catch(() => { messages = {}; });
  }
  return messagesLoaded;
}

/** Translate one of our sidebar texts in ComfyUI's current language. */
export function tr(key, params) {
  const locale = String(getSetting('Comfy.Locale', 'en'));
  for (const code of [locale, libraryLang(locale), 'en']) {
    const text = messages[code]?.modelLibrary?.[key];
    if (typeof text === 'string') return interpolate(text, params);
  }
  return interpolate(DEFAULT_TEXT[key] ?? key, params);
}

function toastApi() { return app.extensionManager?.toast; }

function comfyToast(severity, detail, life = 3500) {
  const toast = toastApi();
  const message = { severity, summary: tr('title'), detail, ...(life ? { life } : {}) };
  if (toast && typeof toast.add === 'function') toast.add(message);
  else console.info(`[model library] ${detail}`);
  return message;
}

/** The toasts interface the shared panel expects, shown as ComfyUI toasts. Toasts carrying an
 * action (Undo) need a button ComfyUI's toasts lack: those go to the panel's own `fallback`. */
function createComfyToasts(getFallback) {
  const SEVERITY = { info: 'info', success: 'success', error: 'error', warning: 'warn' };
  function show(text, { kind = 'info', action = null, timeout } = {}) {
    const fallback = getFallback();
    if (action && fallback) return fallback.show(text, { kind, action, timeout });
    const life = timeout === 0 ? 0 : timeout ?? (kind === 'error' ? 7000 : 3500);
    let message = comfyToast(SEVERITY[kind] || 'info', text, life);
    return {
      dismiss: () => toastApi()?.remove?.(message),
      update(next) {
        toastApi()?.remove?.(message);
        message = comfyToast(SEVERITY[kind] || 'info', next, life);
      },
    };
  }
  return {
    show,
    info: (m, o) => show(m, { ...o, kind: 'info' }),
    success: (m, o) => show(m, { ...o, kind: 'success' }),
    error: (m, o) => show(m, { ...o, kind: 'error' }),
    update() {},
    destroy() {},
  };
}

/** A relay with the socket hub's `on` interface, fed from ComfyUI's socket (lm.* events). */
function createRelay() {
  const handlers = new Map();
  return {
    on(type, fn) {
      if (!handlers.has(type)) handlers.set(type, new Set());
      handlers.get(type).add(fn);
      return () => handlers.get(type).delete(fn);
    },
    dispatch(message) {
      for (const key of [message.type, '*']) {
        for (const fn of [...(handlers.get(key) || [])]) {
          try { fn(message); } catch (err) { console.warn('[model library] event handler failed', err); }
        }
      }
    },
  };
}

const relay = createRelay();

/** Our API client goes through api.fetchApi (base path, Comfy-User header). */
const comfyFetch = (url, init) => api.fetchApi(url, init);

// ---------------------------------------------------------------------------------------
// shared modules from web/app, loaded on first use

const shared = (path) => new URL(`../../lm/static/${path}`, import.meta.url).href;
let sharedLoaded = null;

function loadShared() {
  if (!sharedLoaded) {
    ensureStyles();
    sharedLoaded = Promise.all([
      import(shared('api/client.js')),
      import(shared('i18n/i18n.js')),
      import(shared('components/library_panel.js')),
      import(shared('components/toasts.js')),
      import(shared('components/context_menu.js')),
      import(shared('state/library_state.js')),
      import(shared('lib/model_text.js')),
    ]).then(([client, i18n, panel, toasts, menu, state, text]) => ({
      createApiClient: client.createApiClient,
      createI18n: i18n.createI18n,
      createLibraryPanel: panel.createLibraryPanel,
      createToasts: toasts.createToasts,
      createContextMenu: menu.createContextMenu,
      createQueryStore: state.createQueryStore,
      createSettingsStore: state.createSettingsStore,
      loraSyntax: text.loraSyntax,
      embeddingSyntax: text.embeddingSyntax,
    }));
    sharedLoaded.catch(() => { sharedLoaded = null; });
  }
  return sharedLoaded;
}

/** ComfyUI's palette mapped onto the panel's variables, plus the sidebar's own chrome. */
const SIDEBAR_CSS = `
.${ROOT_CLASS} {
  --lm-bg: var(--comfy-menu-bg, #121214);
  --lm-surface: var(--comfy-input-bg, #19191d);
  --lm-surface-2: var(--comfy-menu-secondary-bg, var(--comfy-input-bg, #212126));
  --lm-text: var(--fg-color, #ececf1);
  --lm-text-2: var(--descrip-text, #b9b9c4);
  --lm-muted: var(--descrip-text, #8b8b97);
  --lm-border: var(--border-color, #2f2f36);
  --lm-border-strong: var(--border-color, #43434d);
  height: 100%; min-height: 0; display: flex; flex-direction: column; overflow: hidden;
  container: lm-sidebar / inline-size;
  background: var(--comfy-menu-bg); color: var(--fg-color);
  font: 13px/1.4 var(--lm-font, system-ui, sans-serif);
}
.${ROOT_CLASS} *, .${ROOT_CLASS} *::before, .${ROOT_CLASS} *::after { box-sizing: border-box; }
.${ROOT_CLASS} .lm-panel { --lm-bg: var(--comfy-menu-bg, #121214); --lm-surface: var(--comfy-input-bg, #19191d);
  --lm-text: var(--fg-color, #ececf1); --lm-border: var(--border-color, #2f2f36); --lm-border-strong: var(--border-color, #43434d); }
.lm-cs-head { display: flex; align-items: center; gap: 6px; padding: 10px 10px 6px 12px; }
.lm-cs-title { flex: 1; min-width: 0; margin: 0; font-size: 13px; font-weight: 650; letter-spacing: 0.04em;
  text-transform: uppercase; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.lm-cs-iconbtn { display: inline-grid; place-items: center; width: 28px; height: 28px; padding: 0; border: 0;
  border-radius: 6px; background: transparent; color: var(--descrip-text, #999); cursor: pointer; font-size: 14px; }
.lm-cs-iconbtn:hover { background: var(--comfy-input-bg); color: var(--fg-color); }
.lm-cs-types { display: flex; gap: 1px; margin: 0 8px 2px; padding: 2px; border-radius: 8px;
  background: var(--comfy-input-bg); border: 1px solid var(--border-color); }
.lm-cs-type { flex: 1 1 auto; min-width: 0; height: 26px; padding: 0 4px; border: 0; border-radius: 6px; background: transparent;
  color: var(--descrip-text, #aaa); font: inherit; font-size: 12px; font-weight: 600; cursor: pointer;
  white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.lm-cs-type:hover { color: var(--fg-color); }
.lm-cs-type[aria-selected="true"] { flex-shrink: 0; }
@container lm-sidebar (max-width: 260px) { .lm-cs-type { font-size: 10.5px; padding: 0 1px; } }
.${ROOT_CLASS} .lm-panel--compact .lm-search-input { padding-right: 34px; }
.lm-cs-type[aria-selected="true"] { background: var(--comfy-menu-bg); color: var(--fg-color); box-shadow: 0 1px 2px rgba(0,0,0,.35); }
.lm-cs-body { flex: 1; min-height: 0; display: flex; flex-direction: column; position: relative; }
.lm-cs-loading { padding: 24px 12px; color: var(--descrip-text); text-align: center; }
.lm-cs-hint { display: flex; align-items: flex-start; gap: 6px; min-height: 28px; padding: 6px 10px 7px; font-size: 11.5px;
  line-height: 1.35; color: var(--descrip-text, #999); border-top: 1px solid var(--border-color); background: var(--comfy-menu-bg); }
.lm-cs-hint .pi { font-size: 11px; flex: none; margin-top: 2px; }
.lm-cs-hint span { overflow: hidden; display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; overflow-wrap: anywhere; }
.${ROOT_CLASS} :focus-visible { outline: 2px solid var(--p-primary-color, #7aa7ff); outline-offset: 1px; }
`;

function ensureStyles() {
  if (!document.querySelector('link[data-lm-styles]')) {
    const link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = shared('styles/library.css');
    link.dataset.lmStyles = '1';
    document.head.append(link);
  }
  if (!document.querySelector('style[data-lm-sidebar]')) {
    const style = document.createElement('style');
    style.dataset.lmSidebar = '1';
    style.textContent = SIDEBAR_CSS;
    document.head.append(style);
  }
}

// ---------------------------------------------------------------------------------------
// the graph: nodes, widgets, wiring, prompt text

const graph = () => app.graph;
const canvas = () => app.canvas;

function selectedNodes() {
  const selected = canvas()?.selected_nodes;
  return selected ? Object.values(selected).filter(Boolean) : [];
}

const nodeLabel = (node) => node.title || node.type || `#${node.id}`;

function findWidget(node, name) {
  return (node?.widgets || []).find((w) => w && w.name === name) || null;
}

function widgetChoices(widget) {
  const values = widget?.options?.values;
  try { return typeof values === 'function' ? values() : values; } catch { return []; }
}

function setWidget(node, widget, value) {
  if (!widget) return;
  const old = widget.value;
  widget.value = value;
  try { widget.callback?.(value, canvas(), node); } catch (err) { console.warn('[model library] widget callback failed', err); }
  node.onWidgetChanged?.(widget.name, value, old, widget);
}

function markChanged() {
  graph()?.setDirtyCanvas?.(true, true);
  canvas()?.setDirty?.(true, true);
  try { app.extensionManager?.workflow?.activeWorkflow?.changeTracker?.checkState?.(); } catch { /* not tracked */ }
}

function getLink(id) {
  const g = graph();
  if (!g || id === null || id === undefined) return null;
  if (typeof g.getLink === 'function') return g.getLink(id) || null;
  const links = g.links;
  return (links && (typeof links.get === 'function' ? links.get(id) : links[id])) || null;
}

function slotsOfType(slots, type) {
  const out = [];
  (slots || []).forEach((slot, index) => { if (slot && slot.type === type) out.push(index); });
  return out;
}

/** The node a new LoRA loader chains after: one selected node with one MODEL output and at
 * most one CLIP output. Anything else is ambiguous and leaves the new node unwired. */
function chainSource(exclude = null) {
  if (!getSetting(SETTING.wire, true)) return null;
  const nodes = selectedNodes().filter((n) => n !== exclude);
  if (nodes.length !== 1) return null;
  const node = nodes[0];
  const model = slotsOfType(node.outputs, 'MODEL');
  const clip = slotsOfType(node.outputs, 'CLIP');
  if (model.length !== 1 || clip.length > 1) return null;
  return { node, model: model[0], clip: clip.length ? clip[0] : -1 };
}

/** Selected nodes that hold a model of this kind (the "Apply" targets). */
function applyTarget(item) {
  const loader = loaderFor(item);
  if (!loader) return null;
  const nodes = selectedNodes().filter((n) => findWidget(n, loader.widget));
  return nodes.length === 1 ? nodes[0] : null;
}

function visibleCenter() {
  const c = canvas();
  const area = c?.ds?.visible_area;
  if (area && area[2] > 0 && area[3] > 0) return [area[0] + area[2] / 2 - 150, area[1] + area[3] / 2 - 60];
  return [100, 100];
}

/** The first spot at or below `start` where a node of `size` overlaps no other node. */
function freeSpot(start, size, ignore) {
  const [w, h] = size && size[0] > 0 ? size : [300, 120];
  const pos = [start[0], start[1]];
  const others = (graph()?.nodes || []).filter((n) => n !== ignore && n.pos && n.size);
  for (let tries = 0; tries < 40; tries += 1) {
    // node.pos is the body's top-left; the title bar sits ~30px above it
    const hit = others.find((n) => pos[0] < n.pos[0] + n.size[0] + 20 && pos[0] + w + 20 > n.pos[0]
      && pos[1] - 30 < n.pos[1] + n.size[1] + 20 && pos[1] + h + 20 > n.pos[1] - 30);
    if (!hit) return pos;
    pos[1] = hit.pos[1] + hit.size[1] + 60;
  }
  return pos;
}

function strengthOf(item) {
  const tips = parseTips(item.usage_tips);
  const fallback = Number(getSetting(SETTING.strength, 1));
  const model = Number(tips.strength ?? fallback);
  const clip = Number(tips.clip_strength ?? model);
  return { model: Number.isFinite(model) ? model : 1, clip: Number.isFinite(clip) ? clip : 1 };
}

/** Put the model into `node`'s model widget; returns false when ComfyUI does not list it yet. */
function applyModel(node, item) {
  const loader = loaderFor(item);
  const widget = findWidget(node, loader.widget);
  if (!widget) return false;
  const { value, listed } = comfyValue(item.relative_path || item.file_name, widgetChoices(widget));
  setWidget(node, widget, value);
  if (item.model_type === 'lora') {
    const strength = strengthOf(item);
    const model = findWidget(node, 'strength_model');
    const clip = findWidget(node, 'strength_clip');
    if (model) setWidget(node, model, strength.model);
    if (clip) setWidget(node, clip, strength.clip);
  }
  return listed;
}

/** Create the loader node for `item` (wired after the chain source when there is one). */
export function addModelNode(item, { pos = null, wire = true } = {}) {
  const g = graph();
  const liteGraph = globalThis.LiteGraph;
  const loader = loaderFor(item);
  if (!g || !liteGraph || !loader) return null;
  const source = wire && item.model_type === 'lora' ? chainSource() : null;
  const spec = source && source.clip < 0 ? LOADERS.loraModelOnly : loader;
  const node = liteGraph.createNode(spec.type);
  if (!node) { comfyToast('error', tr('nodeMissing', { type: spec.type }), 6000); return null; }
  g.beforeChange?.();
  try {
    if (pos) node.pos = [pos[0], pos[1]];
    else if (source) node.pos = freeSpot([source.node.pos[0] + (source.node.size?.[0] ?? 300) + 40, source.node.pos[1]], node.size, node);
    else node.pos = freeSpot(visibleCenter(), node.size, node);
    g.add(node);
    const listed = applyModel(node, item);
    if (source) wireAfter(source, node);
    canvas()?.selectNode?.(node);
    if (!listed) comfyToast('warn', tr('notListed', { name: item.relative_path || itemName(item) }), 7000);
  } finally {
    g.afterChange?.();
  }
  markChanged();
  return node;
}

/** Connect source MODEL/CLIP into `node` and move the source's consumers onto `node`. */
function wireAfter(source, node) {
  const pairs = [[source.model, 'MODEL'], [source.clip, 'CLIP']].filter(([slot]) => slot >= 0);
  for (const [slot, type] of pairs) {
    const input = slotsOfType(node.inputs, type)[0];
    const output = slotsOfType(node.outputs, type)[0];
    if (input === undefined) continue;
    const consumers = (source.node.outputs[slot]?.links || [])
      .map(getLink).filter(Boolean)
      .map((link) => ({ node: graph().getNodeById(link.target_id), slot: link.target_slot }))
      .filter((c) => c.node && c.node !== node);
    source.node.connect(slot, node, input);
    if (output === undefined) continue;
    for (const consumer of consumers) node.connect(output, consumer.node, consumer.slot);
  }
}

// prompt text ----------------------------------------------------------------------------

let lastPrompt = null;

function isPromptField(el) {
  return el instanceof HTMLTextAreaElement && !el.readOnly && !el.disabled
    && !el.closest(`.${ROOT_CLASS}, .lm-modal, .lm-panel`);
}

/** The node owning a DOM text widget (to name it in hints and toasts). */
function nodeOfField(el) {
  for (const node of graph()?.nodes || []) {
    for (const widget of node.widgets || []) {
      if (widget.element === el || widget.inputEl === el) return node;
    }
  }
  return null;
}

function textWidgetOf(node) {
  return (node?.widgets || []).find((w) => w && (w.element instanceof HTMLTextAreaElement || w.inputEl instanceof HTMLTextAreaElement)) || null;
}

/** Insert `text` at the caret of `field` (a prompt textarea) and tell ComfyUI it changed. */
function insertIntoField(field, text) {
  const start = field.selectionStart ?? field.value.length;
  const end = field.selectionEnd ?? start;
  const next = spliceWithSeparators(field.value, start, end, text);
  field.value = next.value;
  field.setSelectionRange(next.caret, next.caret);
  field.dispatchEvent(new Event('input', { bubbles: true }));
  field.dispatchEvent(new Event('change', { bubbles: true }));
  field.focus({ preventScroll: true });
  markChanged();
}

/** Insert into the last focused prompt box, else into the one selected node's text widget. */
export function insertPromptText(text, { field = null, node = null } = {}) {
  let target = field || (lastPrompt && lastPrompt.isConnected ? lastPrompt : null);
  if (!target) {
    const candidates = node ? [node] : selectedNodes();
    const widgets = candidates.map(textWidgetOf).filter(Boolean);
    if (widgets.length === 1) target = widgets[0].element || widgets[0].inputEl;
  }
  if (!target) { comfyToast('info', tr('noTarget'), 5000); return false; }
  insertIntoField(target, text);
  comfyToast('success', tr('inserted', { name: text }), 2500);
  return true;
}

function promptSyntax(item, lib) {
  if (item.model_type === 'embedding') return lib.embeddingSyntax(item);
  if (item.model_type === 'lora') return lib.loraSyntax(item, Number(getSetting(SETTING.strength, 1)));
  return '';
}

// ---------------------------------------------------------------------------------------
// drag and drop onto the canvas / a prompt box (listeners live for the page, from setup())

let dragged = null;

/** A drop on the graph: the canvas itself, or a node drawn as DOM (frontend 1.5x "Vue nodes").
 * The canvas' parent also holds the sidebar and menus in 1.5x, so containment is not enough. */
function isOnCanvas(event) {
  const el = canvas()?.canvas;
  const target = event.target;
  if (!el || !(target instanceof Element)) return false;
  if (target === el) return true;
  return Boolean(target.closest('[data-node-id]')) && !target.closest(`.${ROOT_CLASS}, .side-bar-panel, input, textarea, select`);
}

function onDocumentDragOver(event) {
  if (!event.dataTransfer || ![...event.dataTransfer.types].includes(DRAG_MIME)) return;
  if (isPromptField(event.target) || isOnCanvas(event)) {
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
  }
}

async function onDocumentDrop(event) {
  if (!event.dataTransfer || ![...event.dataTransfer.types].includes(DRAG_MIME)) return;
  let item = dragged;
  try { item = JSON.parse(event.dataTransfer.getData(DRAG_MIME)) || item; } catch { /* use the remembered item */ }
  if (!item) return;
  const onField = isPromptField(event.target);
  if (!onField && !isOnCanvas(event)) return;
  // ComfyUI's own document drop handler would try to load the data as a workflow file
  event.preventDefault();
  event.stopPropagation();
  const lib = await loadShared();
  if (onField) {
    const text = promptSyntax(item, lib);
    if (text) insertPromptText(text, { field: event.target });
    return;
  }
  const c = canvas();
  const pos = c.convertEventToCanvasOffset ? c.convertEventToCanvasOffset(event) : [event.offsetX, event.offsetY];
  const node = graph()?.getNodeOnPos?.(pos[0], pos[1]) || null;
  if (item.model_type === 'embedding') {
    insertPromptText(lib.embeddingSyntax(item), { node: node || undefined });
    return;
  }
  const loader = loaderFor(item);
  if (node && loader && findWidget(node, loader.widget)) {
    applyToNode(node, item);
    return;
  }
  const added = addModelNode(item, { pos });
  if (added) comfyToast('success', tr('added', { name: itemName(item) }), 2500);
}

function applyToNode(node, item) {
  const g = graph();
  g?.beforeChange?.();
  let listed;
  try { listed = applyModel(node, item); } finally { g?.afterChange?.(); }
  markChanged();
  if (!listed) comfyToast('warn', tr('notListed', { name: item.relative_path || itemName(item) }), 7000);
  else comfyToast('success', tr('applied', { name: itemName(item), node: nodeLabel(node) }), 2500);
}

// ---------------------------------------------------------------------------------------
// the sidebar view

let view = null;

function panelSettings() {
  const level = String(getSetting(SETTING.blurLevel, 'R'));
  return {
    default_lora_strength: Number(getSetting(SETTING.strength, 1)),
    blur_mature_content: Boolean(getSetting(SETTING.blur, true)),
    mature_blur_level: BLUR_LEVELS.includes(level) ? level : 'R',
  };
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  node.append(...children.filter(Boolean));
  return node;
}

async function mountSidebar(container) {
  // the frontend hands over an auto-height div; the virtualised grid needs a definite height
  container.style.height = '100%';
  const root = el('div', { class: ROOT_CLASS, dataset: { lmSidebar: '1' } });
  container.replaceChildren(root);
  const loading = el('div', { class: 'lm-cs-loading', text: '…', role: 'status' });
  root.append(loading);
  const state = { destroyed: false, destroy() { this.destroyed = true; container.replaceChildren(); } };
  view = state;
  let lib;
  try {
    [lib] = await Promise.all([loadShared(), loadMessages()]);
  } catch (err) {
    loading.textContent = `${tr('title')}: ${err && err.message ? err.message : err}`;
    return state;
  }
  if (state.destroyed) return state;
  loading.remove();

  // previews in answers ('/api/lm/previews?...') are rooted at ComfyUI's base path by the client
  const client = lib.createApiClient({ base: '/lm', fetchImpl: comfyFetch, urlRoot: basePath() });
  const lang = libraryLang(getSetting('Comfy.Locale', 'en'));
  const i18n = lib.createI18n({ lang });
  try { await i18n.load(client, lang); } catch { /* keys fall back to themselves */ }
  if (state.destroyed) return state;
  const t = i18n.t;
  const settings = lib.createSettingsStore(panelSettings());
  const queries = new Map();
  let saved = null;
  try { saved = localStorage.getItem(TYPE_STORAGE_KEY); } catch { /* storage blocked */ }
  let current = TYPES.find((x) => x.prefix === saved) || TYPES[0];
  let panel = null;
  let lastHint = '';

  const openButton = el('button', {
    type: 'button', class: 'lm-cs-iconbtn', dataset: { cs: 'open' }, title: tr('openFullLibrary'), 'aria-label': tr('openFullLibrary'),
  }, el('i', { class: 'pi pi-external-link', 'aria-hidden': 'true' }));
  const head = el('div', { class: 'lm-cs-head' }, el('h3', { class: 'lm-cs-title', text: tr('title') }), openButton);
  const tabs = el('div', { class: 'lm-cs-types', role: 'tablist', 'aria-label': tr('typesLabel') },
    ...TYPES.map((type) => el('button', {
      type: 'button', class: 'lm-cs-type', role: 'tab', id: `lm-cs-tab-${type.prefix}`,
      'aria-controls': 'lm-cs-body', dataset: { csType: type.prefix }, text: t(type.label), title: t(type.label),
    })));
  const body = el('div', { class: 'lm-cs-body', id: 'lm-cs-body', role: 'tabpanel' });
  const hintText = el('span');
  // what "Add" will do with the current canvas selection (polled: LiteGraph has no selection event in 1.27)
  const hint = el('div', { class: 'lm-cs-hint', role: 'note' }, el('i', { class: 'pi pi-info-circle', 'aria-hidden': 'true' }), hintText);
  const menuHost = el('div');
  const toastHost = el('div');
  root.append(head, tabs, body, hint, menuHost, toastHost);

  const panelToasts = lib.createToasts(toastHost, { t });
  const toasts = createComfyToasts(() => panelToasts);
  const menu = lib.createContextMenu(menuHost, { t });

  function cardFor(item) {
    for (const card of body.querySelectorAll('.lm-card')) if (card.dataset.path === item.file_path) return card;
    return null;
  }

  function add(item) {
    if (item.model_type === 'embedding') { insertPromptText(lib.embeddingSyntax(item)); return; }
    const target = applyTarget(item);
    if (!target) {
      if (addModelNode(item)) comfyToast('success', tr('added', { name: itemName(item) }), 2500);
      return;
    }
    // a loader of this kind is selected: chaining a new one and replacing its model both make sense
    const source = item.model_type === 'lora' ? chainSource() : null;
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
        if (id === 'apply') applyToNode(target, item);
        else if (addModelNode(item)) comfyToast('success', tr('added', { name: itemName(item) }), 2500);
      },
    });
  }

  function onDragStart(item, event) {
    dragged = item;
    const text = promptSyntax(item, lib) || item.relative_path || '';
    event.dataTransfer.effectAllowed = 'copy';
    event.dataTransfer.setData(DRAG_MIME, JSON.stringify(item));
    event.dataTransfer.setData('text/plain', text);
  }

  function mountPanel() {
    if (panel) panel.destroy();
    const host = el('div', { class: 'lm-cs-panel' });
    host.style.cssText = 'flex:1;min-height:0;display:flex;flex-direction:column;';
    body.replaceChildren(host);
    if (!queries.has(current.prefix)) queries.set(current.prefix, lib.createQueryStore());
    panel = lib.createLibraryPanel(host, {
      api: client, prefix: current.prefix, modelType: current.modelType, t, lang: () => i18n.lang,
      toasts, events: relay, settings, query: queries.get(current.prefix), compact: true,
      pageSize: Number(getSetting(SETTING.pageSize, 100)),
      onAdd: add, onDragStart,
    });
    for (const tab of tabs.children) {
      const on = tab.dataset.csType === current.prefix;
      tab.setAttribute('aria-selected', String(on));
      tab.tabIndex = on ? 0 : -1;
    }
    body.setAttribute('aria-labelledby', `lm-cs-tab-${current.prefix}`);
    updateHint();
  }

  function selectType(prefix, focus = false) {
    const next = TYPES.find((x) => x.prefix === prefix);
    if (!next) return;
    if (next !== current) {
      current = next;
      try { localStorage.setItem(TYPE_STORAGE_KEY, prefix); } catch { /* private mode */ }
      mountPanel();
    }
    if (focus) tabs.querySelector(`[data-cs-type="${prefix}"]`)?.focus();
  }

  function describeTarget() {
    if (current.modelType === 'embedding') {
      const field = lastPrompt && lastPrompt.isConnected ? lastPrompt : null;
      const node = field ? nodeOfField(field) : null;
      return field ? tr('hintInsert', { node: node ? nodeLabel(node) : '…' }) : tr('hintInsertNone');
    }
    const probe = { model_type: current.modelType, sub_type: '' };
    const target = applyTarget(probe) || (current.modelType === 'checkpoint' ? applyTarget({ ...probe, sub_type: 'diffusion_model' }) : null);
    if (target) return current.modelType === 'lora' && chainSource() ? tr('hintApply', { node: nodeLabel(target) }) : tr('hintApplyOnly', { node: nodeLabel(target) });
    const source = current.modelType === 'lora' ? chainSource() : null;
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
    if (event.target.closest?.('[data-cs="open"]')) openLibrary();
  }

  function onKeyDown(event) {
    const tab = event.target.closest?.('[data-cs-type]');
    if (tab && ['ArrowLeft', 'ArrowRight', 'Home', 'End'].includes(event.key)) {
      event.preventDefault();
      const index = TYPES.findIndex((x) => x.prefix === tab.dataset.csType);
      const next = event.key === 'Home' ? 0 : event.key === 'End' ? TYPES.length - 1
        : (index + (event.key === 'ArrowRight' ? 1 : TYPES.length - 1)) % TYPES.length;
      selectType(TYPES[next].prefix, true);
    }
    const card = event.target.closest?.('.lm-card');
    if (card && event.target === card && (event.key === 'a' || event.key === 'A') && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      card.querySelector('[data-action="add"]')?.click();
    }
    // keep ComfyUI's single-key shortcuts (R, Q, Delete…) from firing while we have focus
    if (!event.ctrlKey && !event.metaKey && !event.altKey && event.key !== 'Escape') event.stopPropagation();
  }

  root.addEventListener('click', onClick);
  root.addEventListener('keydown', onKeyDown);
  mountPanel();

  state.panel = () => panel;
  state.syncSettings = () => settings.set(panelSettings());
  state.reload = () => panel && panel.reload();
  state.remount = () => { if (!state.destroyed) mountPanel(); };
  state.prefix = () => current.prefix;
  state.destroy = function destroy() {
    this.destroyed = true;
    clearInterval(hintTimer);
    root.removeEventListener('click', onClick);
    root.removeEventListener('keydown', onKeyDown);
    if (panel) panel.destroy();
    menu.destroy();
    panelToasts.destroy();
    container.replaceChildren();
  };
  return state;
}

// ---------------------------------------------------------------------------------------
// long operations reported on ComfyUI's socket

function onProgress(message) {
  if (message.type === 'civitai_fetch_progress') {
    if (message.status === 'completed') comfyToast('success', tr('fetchDone', { updated: message.updated ?? 0, total: message.total ?? 0 }), 5000);
    else if (message.status === 'error') comfyToast('error', tr('fetchFailed', { error: message.error || '' }), 8000);
  } else if (message.type === 'download_progress') {
    const name = message.file_name || message.model_name || message.name || '';
    if (message.status === 'completed') comfyToast('success', tr('downloadDone', { name }), 5000);
    else if (message.status === 'failed' || message.status === 'error') comfyToast('error', tr('downloadFailed', { name }), 8000);
  } else if (message.type === 'auto_organize_progress' && message.status === 'completed') {
    comfyToast('success', tr('organizeDone'), 5000);
  } else if (message.type === 'init_progress' && message.ready && view && view.reload) {
    view.reload();
  }
}

function registerSidebarTab() {
  const manager = app.extensionManager;
  const tab = {
    id: TAB_ID,
    icon: 'pi pi-images',
    title: tr('title'),
    tooltip: tr('tooltip'),
    label: tr('label'),
    type: 'custom',
    render(container) {
      if (view) view.destroy();
      mountSidebar(container).catch((err) => console.error('[model library] sidebar failed', err));
    },
    destroy() {
      if (view) view.destroy();
      view = null;
    },
  };
  const register = manager?.sidebarTab?.registerSidebarTab
    ? (t) => manager.sidebarTab.registerSidebarTab(t)
    : (t) => manager.registerSidebarTab(t);
  register(tab);
}

const settingChanged = () => { if (view && view.syncSettings) view.syncSettings(); };
const pageSizeChanged = () => { if (view && view.remount) view.remount(); };

function openLibrary() {
  const url = libraryUrl(view && view.prefix ? view.prefix() : 'loras');
  if (getSetting(SETTING.newTab, true)) window.open(url, '_blank', 'noopener');
  else window.location.assign(url);
}

app.registerExtension({
  name: EXTENSION,
  // names and tooltips here are the English fallbacks; ComfyUI translates them from
  // locales/<lang>/settings.json (`ModelLibrary_General_*`) and commands.json
  settings: [
    {
      id: SETTING.strength, sortOrder: 50, category: ['ModelLibrary', 'General', 'DefaultLoraStrength'], name: 'Default LoRA strength',
      tooltip: 'Strength used for new LoRA nodes and copied <lora:…> syntax when the model has no usage tip.',
      type: 'slider', attrs: { min: -2, max: 3, step: 0.05 }, defaultValue: 1, onChange: settingChanged,
    },
    {
      id: SETTING.wire, sortOrder: 40, category: ['ModelLibrary', 'General', 'WireAfterSelection'], name: 'Wire new LoRA nodes after the selected node',
      tooltip: 'With one node with MODEL/CLIP outputs selected, a new LoRA node is connected after it and takes over its connections.',
      type: 'boolean', defaultValue: true,
    },
    {
      id: SETTING.blur, sortOrder: 30, category: ['ModelLibrary', 'General', 'BlurMatureContent'], name: 'Blur mature previews',
      tooltip: 'Blur previews above the NSFW level chosen in the library settings.',
      type: 'boolean', defaultValue: true, onChange: settingChanged,
    },
    {
      id: SETTING.blurLevel, sortOrder: 20, category: ['ModelLibrary', 'General', 'BlurLevel'], name: 'Blur previews rated at or above',
      tooltip: 'CivitAI rating from which previews are blurred in the sidebar.',
      type: 'combo', options: BLUR_LEVELS, defaultValue: 'R', onChange: settingChanged,
    },
    {
      id: SETTING.pageSize, sortOrder: 15, category: ['ModelLibrary', 'General', 'PageSize'], name: 'Models loaded per request',
      tooltip: 'How many models the sidebar fetches at a time while scrolling (10-100). Smaller pages answer faster on slow connections.',
      type: 'slider', attrs: { min: 10, max: 100, step: 10 }, defaultValue: 100, onChange: pageSizeChanged,
    },
    {
      id: SETTING.newTab, sortOrder: 10, category: ['ModelLibrary', 'General', 'OpenInNewTab'], name: 'Open the full library in a new tab',
      tooltip: 'Otherwise it opens in the current tab.',
      type: 'boolean', defaultValue: true,
    },
  ],
  commands: [{ id: COMMAND_OPEN, label: 'Open model library', icon: 'pi pi-external-link', function: openLibrary }],
  menuCommands: [{ path: ['Extensions', 'Model Library'], commands: [COMMAND_OPEN] }],
  async setup() {
    // listeners first: ComfyUI drops lm.* messages that arrive before anyone listens
    for (const type of EVENT_TYPES) {
      api.addEventListener(`lm.${type}`, (event) => relay.dispatch({ ...(event.detail || {}), type }));
    }
    relay.on('*', onProgress);
    document.addEventListener('dragover', onDocumentDragOver, true);
    document.addEventListener('drop', (event) => { onDocumentDrop(event).catch((err) => console.error('[model library] drop failed', err)); }, true);
    document.addEventListener('focusin', (event) => { if (isPromptField(event.target)) lastPrompt = event.target; });
    // ComfyUI's keybinding handler on window runs Escape as a command and prevents its default,
    // which would stop our modal dialogs from closing: keys never leave an open library dialog
    document.addEventListener('keydown', (event) => {
      if (document.querySelector('dialog.lm-modal[open]')) event.stopPropagation();
    });
    await loadMessages();
    registerSidebarTab();
  },
});
