/**
 * ComfyUI entry point of the model library: registers the one extension (settings, the
 * "Open model library" command and menu entry, the sidebar tab) and sets up the page-wide
 * listeners (our socket events, drag and drop, prompt focus, keys in library dialogs).
 *
 * Only registration lives here; the work is done by the modules of web/app/comfyui/, created
 * once below with ComfyUI's `app` and `api` passed in. They sit under web/app because ComfyUI
 * runs every .js under web/comfyui as an extension, and they do not import ComfyUI's scripts
 * (that relative path only holds for this folder). This file imports only ComfyUI's shims and
 * web/app/comfyui/, keeps no mutable state of its own, and keeps the ids below stable: locales/
 * and users' saved settings and keybindings name them.
 */
import { app } from '../../scripts/app.js';
import { api } from '../../scripts/api.js';
// web/comfyui is served at /extensions/<plugin folder>/, web/app by our route /lm/static/: these
// paths resolve against this file's URL like `new URL('../../lm/static/…', import.meta.url)`, so
// neither the plugin folder's name nor ComfyUI's base path is written anywhere
import { createCompat } from '../../lm/static/comfyui/compat.js';
import { SETTING, BLUR_LEVELS, createSettings } from '../../lm/static/comfyui/settings.js';
import { DEFAULT_TEXT, libraryLang, createTexts } from '../../lm/static/comfyui/texts.js';
import { createUrls } from '../../lm/static/comfyui/urls.js';
import { createComfyToasts } from '../../lm/static/comfyui/toasts.js';
import { createRelay } from '../../lm/static/comfyui/relay.js';
import { comfyValue, createGraph } from '../../lm/static/comfyui/graph.js';
import { spliceWithSeparators, createPrompt } from '../../lm/static/comfyui/prompt.js';
import { createDragDrop } from '../../lm/static/comfyui/drag_drop.js';
import { createSidebar } from '../../lm/static/comfyui/sidebar.js';
import { createMissingModels } from '../../lm/static/comfyui/missing_models.js';

const EXTENSION = 'ModelLibrary.Sidebar';
const TAB_ID = 'lm-model-library';

/** Command id (label in locales/<lang>/commands.json under `ModelLibrary_Open`). */
export const COMMAND_OPEN = 'ModelLibrary.Open';

// the objects holding the extension's state, one per page
const compat = createCompat({ app });
const settings = createSettings({ compat });
const texts = createTexts({ api, settings });
const urls = createUrls({ api });
const toasts = createComfyToasts({ app, tr: texts.tr });
const relay = createRelay();
// LiteGraph is ComfyUI's global, read when a node is created (not when this module loads)
const graph = createGraph({ app, compat, liteGraph: () => globalThis.LiteGraph, settings, toast: toasts.toast, tr: texts.tr });
const prompt = createPrompt({ graph, settings, toast: toasts.toast, tr: texts.tr });
const dragDrop = createDragDrop({ graph, prompt, toast: toasts.toast, tr: texts.tr });
const missingModels = createMissingModels({
  app, compat, fetchApi: (url, init) => api.fetchApi(url, init), tr: texts.tr, toast: toasts.toast,
});
const sidebar = createSidebar({
  fetchApi: (url, init) => api.fetchApi(url, init), // base path and Comfy-User header
  basePath: urls.basePath, settings, texts, toasts, graph, prompt, dragDrop, events: relay, openLibrary,
  headerStyle: compat.headerStyle, closeTab, missingModels,
});

// what the contract test page and other callers import from the entry
export { SETTING, DEFAULT_TEXT, libraryLang, comfyValue, spliceWithSeparators };
export const { tr } = texts;
export const { basePath, libraryUrl } = urls;
export const { addModelNode } = graph;
export const { insertPromptText } = prompt;

function openLibrary() {
  const url = libraryUrl(sidebar.prefix());
  if (settings.get(SETTING.newTab, true)) window.open(url, '_blank', 'noopener');
  else window.location.assign(url);
}

/** Close our tab the way ComfyUI's own close button does (its toggle command). */
function closeTab() {
  app.extensionManager?.command?.execute?.(`Workspace.ToggleSidebarTab.${TAB_ID}`);
}

function registerSidebarTab() {
  // a title and icon of our own: ComfyUI's core tab is the "Model Library" with a model icon
  compat.registerSidebarTab({
    id: TAB_ID,
    icon: 'mdi mdi-view-gallery-outline',
    title: tr('title'),
    tooltip: tr('tooltip'),
    label: tr('label'),
    type: 'custom',
    render: (container) => sidebar.render(container),
    destroy: () => sidebar.destroy(),
  });
}

function onSocketMessage(message) {
  toasts.reportProgress(message);
  // the library finished indexing: the open tab lists what it could not before
  if (message.type === 'init_progress' && message.ready) sidebar.reload();
}

const settingChanged = () => sidebar.syncSettings();
const pageSizeChanged = () => sidebar.remount();

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
      type: 'combo', options: [...BLUR_LEVELS], defaultValue: 'R', onChange: settingChanged,
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
  // a workflow was loaded (a file, a template, a dropped PNG's graph): which of its models are
  // moved or missing (1.27 and 1.5x both call this after configuring the graph)
  async afterConfigureGraph() {
    missingModels.onGraphLoaded().catch(() => {});
  },
  async setup() {
    // listeners first, then the server is asked for lm.* messages (relay.js)
    relay.connect(api);
    relay.on('*', onSocketMessage);
    // capture phase: ahead of ComfyUI's document drop handler, which loads dropped workflows
    document.addEventListener('dragover', dragDrop.onDragOver, true);
    document.addEventListener('drop', dragDrop.onDrop, true);
    // passive: a dropped PNG's A1111 parameters for the missing-models check of its graph
    document.addEventListener('drop', missingModels.onDrop, true);
    document.addEventListener('focusin', (event) => prompt.remember(event.target));
    // ComfyUI's keybinding handler on window runs Escape as a command and prevents its default,
    // which would stop our modal dialogs from closing: keys never leave an open library dialog
    document.addEventListener('keydown', (event) => {
      if (document.querySelector('dialog.lm-modal[open]')) event.stopPropagation();
    });
    await texts.load();
    registerSidebarTab();
  },
});
