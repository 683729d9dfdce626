/**
 * Graph wiring: which loader node a model needs, adding it (at a free spot, or wired after the
 * selected node) and applying a model to an existing loader, through LiteGraph's API.
 * Owns no DOM and no listeners; it must not import ComfyUI's scripts: `app` and LiteGraph
 * come in as deps, and the graph and canvas are looked up on every call (ComfyUI swaps them
 * when a workflow or subgraph is opened).
 */
import { parseUsageTips } from '../lib/model_text.js';
import { SETTING } from './settings.js';

/** Loader nodes per model kind: node type and the widget holding the model. */
export const LOADERS = Object.freeze({
  lora: { type: 'LoraLoader', widget: 'lora_name' },
  loraModelOnly: { type: 'LoraLoaderModelOnly', widget: 'lora_name' },
  checkpoint: { type: 'CheckpointLoaderSimple', widget: 'ckpt_name' },
  diffusion_model: { type: 'UNETLoader', widget: 'unet_name' },
});

/** The loader of a listing item (null for embeddings: they go into prompt text). */
export function loaderFor(item) {
  if (item.model_type === 'lora') return LOADERS.lora;
  if (item.model_type === 'checkpoint') return item.sub_type === 'diffusion_model' ? LOADERS.diffusion_model : LOADERS.checkpoint;
  return null;
}

export function itemName(item) { return item.model_name || item.file_name || item.relative_path || ''; }

export const nodeLabel = (node) => node.title || node.type || `#${node.id}`;

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

/** The first spot at or below `start` where a node of `size` overlaps none of `others`. */
export function freeSpot(start, size, others) {
  const [w, h] = size && size[0] > 0 ? size : [300, 120];
  const pos = [start[0], start[1]];
  const placed = others.filter((n) => n.pos && n.size);
  for (let tries = 0; tries < 40; tries += 1) {
    // node.pos is the body's top-left; the title bar sits ~30px above it
    const hit = placed.find((n) => pos[0] < n.pos[0] + n.size[0] + 20 && pos[0] + w + 20 > n.pos[0]
      && pos[1] - 30 < n.pos[1] + n.size[1] + 20 && pos[1] + h + 20 > n.pos[1] - 30);
    if (!hit) return pos;
    pos[1] = hit.pos[1] + hit.size[1] + 60;
  }
  return pos;
}

function slotsOfType(slots, type) {
  const out = [];
  (slots || []).forEach((slot, index) => { if (slot && slot.type === type) out.push(index); });
  return out;
}

function findWidget(node, name) {
  return (node?.widgets || []).find((w) => w && w.name === name) || null;
}

function widgetChoices(widget) {
  const values = widget?.options?.values;
  try { return typeof values === 'function' ? values() : values; } catch { return []; }
}

/**
 * deps: {app, liteGraph() (ComfyUI's LiteGraph), settings, toast(severity, detail, life), tr}.
 * Returns the graph actions the sidebar, the drop handler and prompt insertion share.
 */
export function createGraph({ app, liteGraph, settings, toast, tr }) {
  const graph = () => app.graph;
  const canvas = () => app.canvas;

  function selectedNodes() {
    const selected = canvas()?.selected_nodes;
    return selected ? Object.values(selected).filter(Boolean) : [];
  }

  function setWidget(node, widget, value) {
    if (!widget) return;
    const old = widget.value;
    widget.value = value;
    try { widget.callback?.(value, canvas(), node); } catch (err) { console.warn('[model library] widget callback failed', err); }
    node.onWidgetChanged?.(widget.name, value, old, widget);
  }

  /** Redraw, and let the workflow's change tracker see the edit (undo, "modified" mark). */
  function markChanged() {
    graph()?.setDirtyCanvas?.(true, true);
    canvas()?.setDirty?.(true, true);
    try { app.extensionManager?.workflow?.activeWorkflow?.changeTracker?.checkState?.(); } catch { /* not tracked */ }
  }

  function getLink(id) {
    const g = graph();
    if (!g || id === null || id === undefined) return null;
    if (typeof g.getLink === 'function') return g.getLink(id) || null;
    // older LiteGraph keeps links in a plain object, newer ones in a Map
    const links = g.links;
    return (links && (typeof links.get === 'function' ? links.get(id) : links[id])) || null;
  }

  /** The node a new LoRA loader chains after: one selected node with one MODEL output and at
   * most one CLIP output. Anything else is ambiguous and leaves the new node unwired. */
  function chainSource(exclude = null) {
    if (!settings.get(SETTING.wire, true)) return null;
    const nodes = selectedNodes().filter((n) => n !== exclude);
    if (nodes.length !== 1) return null;
    const node = nodes[0];
    const model = slotsOfType(node.outputs, 'MODEL');
    const clip = slotsOfType(node.outputs, 'CLIP');
    if (model.length !== 1 || clip.length > 1) return null;
    return { node, model: model[0], clip: clip.length ? clip[0] : -1 };
  }

  /** The one selected node holding a model of this kind (the "Apply" target), else null. */
  function applyTarget(item) {
    const loader = loaderFor(item);
    if (!loader) return null;
    const nodes = selectedNodes().filter((n) => findWidget(n, loader.widget));
    return nodes.length === 1 ? nodes[0] : null;
  }

  /** Whether `node` has the model widget of `item`'s loader (a drop on it applies the model). */
  function holdsModelOf(node, item) {
    const loader = loaderFor(item);
    return Boolean(node && loader && findWidget(node, loader.widget));
  }

  function visibleCenter() {
    const area = canvas()?.ds?.visible_area;
    if (area && area[2] > 0 && area[3] > 0) return [area[0] + area[2] / 2 - 150, area[1] + area[3] / 2 - 60];
    return [100, 100];
  }

  function strengthOf(item) {
    const tips = parseUsageTips(item.usage_tips);
    const fallback = Number(settings.get(SETTING.strength, 1));
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

  /** Connect source MODEL/CLIP into `node` and move the source's consumers onto `node`. */
  function wireAfter(source, node) {
    const pairs = [[source.model, 'MODEL'], [source.clip, 'CLIP']].filter(([slot]) => slot >= 0);
    for (const [slot, type] of pairs) {
      const input = slotsOfType(node.inputs, type)[0];
      const output = slotsOfType(node.outputs, type)[0];
      if (input === undefined) continue;
      // read the consumers before connecting: connect() adds the new link to the same list
      const consumers = (source.node.outputs[slot]?.links || [])
        .map(getLink).filter(Boolean)
        .map((link) => ({ node: graph().getNodeById(link.target_id), slot: link.target_slot }))
        .filter((c) => c.node && c.node !== node);
      source.node.connect(slot, node, input);
      if (output === undefined) continue;
      for (const consumer of consumers) node.connect(output, consumer.node, consumer.slot);
    }
  }

  /** Create the loader node for `item` (wired after the chain source when there is one). */
  function addModelNode(item, { pos = null, wire = true } = {}) {
    const g = graph();
    const lg = liteGraph();
    const loader = loaderFor(item);
    if (!g || !lg || !loader) return null;
    const source = wire && item.model_type === 'lora' ? chainSource() : null;
    // a source without CLIP (a diffusion model loader) takes the model-only LoRA loader
    const spec = source && source.clip < 0 ? LOADERS.loraModelOnly : loader;
    const node = lg.createNode(spec.type);
    if (!node) { toast('error', tr('nodeMissing', { type: spec.type }), 6000); return null; }
    // beforeChange/afterChange bracket the edit as one undo step
    g.beforeChange?.();
    try {
      const others = (g.nodes || []).filter((n) => n !== node);
      if (pos) node.pos = [pos[0], pos[1]];
      else if (source) node.pos = freeSpot([source.node.pos[0] + (source.node.size?.[0] ?? 300) + 40, source.node.pos[1]], node.size, others);
      else node.pos = freeSpot(visibleCenter(), node.size, others);
      g.add(node);
      const listed = applyModel(node, item);
      if (source) wireAfter(source, node);
      canvas()?.selectNode?.(node);
      if (!listed) toast('warn', tr('notListed', { name: item.relative_path || itemName(item) }), 7000);
    } finally {
      g.afterChange?.();
    }
    markChanged();
    return node;
  }

  /** Set `item` on an existing loader node, as one undo step, and say so. */
  function applyToNode(node, item) {
    const g = graph();
    g?.beforeChange?.();
    let listed;
    try { listed = applyModel(node, item); } finally { g?.afterChange?.(); }
    markChanged();
    if (!listed) toast('warn', tr('notListed', { name: item.relative_path || itemName(item) }), 7000);
    else toast('success', tr('applied', { name: itemName(item), node: nodeLabel(node) }), 2500);
  }

  /** The canvas element (null before ComfyUI created it). */
  const canvasElement = () => canvas()?.canvas || null;

  /** A mouse/drag event's position in graph coordinates, and the node drawn there. */
  function pointOf(event) {
    const c = canvas();
    const pos = c.convertEventToCanvasOffset ? c.convertEventToCanvasOffset(event) : [event.offsetX, event.offsetY];
    return { pos, node: graph()?.getNodeOnPos?.(pos[0], pos[1]) || null };
  }

  return {
    graph, selectedNodes, chainSource, applyTarget, holdsModelOf,
    addModelNode, applyToNode, markChanged, canvasElement, pointOf,
  };
}
