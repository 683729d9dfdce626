/**
 * The ComfyUI extension of the library's nodes, assembled from the modules beside it: the
 * list and chip widgets, previews in ComfyUI's model pickers (setting PICKER_SETTING), and the
 * page → graph event (`lm.graph_add`: a LoRA goes into the selected LoRA Loader / Stacker, else a
 * core loader node is made as the sidebar's Add does). Must not import ComfyUI's scripts:
 * `app`, `api` and the sidebar entry's `addModelNode` / `insertPromptText` come in as deps.
 */
import { createApiClient } from '../../api/client.js';
import { embeddingSyntax, parseUsageTips } from '../../lib/model_text.js';
import { createCompat, isNode } from '../compat.js';
import { SETTING, createSettings } from '../settings.js';
import { createUrls } from '../urls.js';
import { createComfyToasts } from '../toasts.js';
import { askForEvents } from '../relay.js';
import { createLookup } from './lookup.js';
import { createPreviewCard } from './preview_card.js';
import { createPickerPreviews } from './picker_previews.js';
import { createNodeTexts } from './node_texts.js';
import { createNodeWidgets } from './node_widgets.js';
import { addLoraToListNode, isLoraListNode } from './list_nodes.js';

export const EXTENSION_NAME = 'ModelLibrary.Nodes';
export const PICKER_SETTING = 'ModelLibrary.Nodes.PickerPreviews';
const STYLESHEET = new URL('../../styles/nodes.css', import.meta.url).href;

function ensureStyles() {
  if (document.querySelector('link[data-lm-node-styles]')) return;
  const link = document.createElement('link');
  link.rel = 'stylesheet';
  link.href = STYLESHEET;
  link.dataset.lmNodeStyles = '1';
  document.head.append(link);
}

/** deps: {app, api, addModelNode(item), insertPromptText(text)}. Returns {definition, ...}. */
export function createNodesExtension({ app, api, addModelNode, insertPromptText }) {
  const compat = createCompat({ app });
  const settings = createSettings({ compat });
  const texts = createNodeTexts({ api, settings });
  const { tr } = texts;
  const urls = createUrls({ api });
  const toasts = createComfyToasts({ app, tr });
  // previews ('/api/lm/previews?...') are rooted at ComfyUI's base path, as in the sidebar
  const client = createApiClient({ base: '/lm', fetchImpl: (url, init) => api.fetchApi(url, init), urlRoot: urls.basePath() });
  const lookup = createLookup({ client });
  const card = createPreviewCard({ tr });
  const defaultStrength = () => {
    const value = Number(settings.get(SETTING.strength, 1));
    return Number.isFinite(value) ? value : 1;
  };
  const widgets = createNodeWidgets({ app, compat, client, lookup, card, tr, defaultStrength });
  const pickers = createPickerPreviews({ app, lookup, card, enabled: () => settings.get(PICKER_SETTING, true) !== false });

  function selectedNodes() {
    const items = app.canvas?.selectedItems;
    return items ? [...items].filter(isNode) : [];
  }

  /** The one selected LoRA Loader/Stacker (Model Library) node, else null. */
  function selectedListNode() {
    const nodes = selectedNodes();
    return nodes.length === 1 && isLoraListNode(nodes[0]) ? nodes[0] : null;
  }

  /** Add a LoRA to a list node as one undo step, with the model's usage tips or the setting. */
  function addToList(node, item) {
    const tips = parseUsageTips(item.usage_tips);
    const strength = Number(tips.strength ?? defaultStrength());
    const clip = Number(tips.clip_strength ?? strength);
    const graph = compat.currentGraph();
    graph?.beforeChange?.();
    let added;
    try { added = addLoraToListNode(node, item, { strength, clipStrength: clip }); } finally { graph?.afterChange?.(); }
    try { compat.captureChange(); } catch { /* not tracked */ }
    const name = item.model_name || item.file_name || item.relative_path;
    const label = node.title || node.type;
    toasts.toast('success', tr(added ? 'addedToList' : 'inList', { name, node: label }), 2500);
    return added;
  }

  /** `lm.graph_add` from the full page: into the selected list node, else a loader node. */
  function onGraphAdd(event) {
    const item = event?.detail?.item;
    if (!item || typeof item !== 'object') return;
    const name = item.model_name || item.file_name || item.relative_path || '';
    const listNode = item.model_type === 'lora' ? selectedListNode() : null;
    if (listNode) { addToList(listNode, item); return; }
    if (item.model_type === 'embedding') {
      if (insertPromptText) insertPromptText(embeddingSyntax(item));
      return;
    }
    if (addModelNode?.(item)) toasts.toast('success', tr('added', { name }), 2500);
    else toasts.toast('warn', tr('cannotAdd', { name }), 5000);
  }

  const definition = {
    name: EXTENSION_NAME,
    settings: [{
      id: PICKER_SETTING, category: ['ModelLibrary', 'Nodes', 'PickerPreviews'], name: 'Previews in model pickers',
      tooltip: 'Hovering a LoRA, checkpoint or diffusion model in a loader\'s list shows its preview, base model and trigger words.',
      type: 'boolean', defaultValue: true,
    }],
    beforeRegisterNodeDef(nodeType, nodeData) { widgets.beforeRegisterNodeDef(nodeType, nodeData); },
    async setup() {
      // listeners first, then the server is asked for lm.* messages (relay.js)
      api.addEventListener('lm.graph_add', onGraphAdd);
      api.addEventListener('lm.models_changed', () => { lookup.clear(); widgets.refreshChips(); });
      askForEvents(api);
      ensureStyles();
      pickers.start();
      await texts.load();
    },
  };

  return { definition, selectedListNode, addToList, lookup, onGraphAdd };
}
