/**
 * Graph wiring: which loader node a model needs, adding it where the user is looking (a free
 * spot mid-view, or wired after the selected node and scrolled into view) and applying a model
 * to an existing loader, through LiteGraph's current public API (compat.js covers 1.27).
 * Owns no DOM and no listeners; it must not import ComfyUI's scripts: `app` and LiteGraph
 * come in as deps, and the graph and canvas are looked up on every call (ComfyUI swaps them
 * when a workflow or subgraph is opened).
 */
import { parseUsageTips } from '../lib/model_text.js';
import { SETTING } from './settings.js';
import { isNode } from './compat.js';
import { addLoraToListNode, isLoraListNode } from './nodes/list_nodes.js';

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

// LiteGraph draws a node's title bar this far above node.pos (LiteGraph.NODE_TITLE_HEIGHT)
const TITLE_HEIGHT = 30;
// both frontends stack toasts (our "added" one among them) at the canvas's top right: PrimeVue's
// 25rem column in 1.2x, a 24rem viewport with padding in 1.5x, starting up to 80 px down. A
// node is kept out of that corner so the toast that follows does not hide it.
const TOAST_LANE = { width: 416, height: 380 };
const DEFAULT_SIZE = [300, 120];

/** A node's box with its title bar: [x, y, w, h] in graph coordinates. */
function boxOf(pos, size) {
  const [w, h] = size && size[0] > 0 ? size : DEFAULT_SIZE;
  return [pos[0], pos[1] - TITLE_HEIGHT, w, h + TITLE_HEIGHT];
}

function overlaps(a, b, margin) {
  return a[0] < b[0] + b[2] + margin && a[0] + a[2] + margin > b[0] && a[1] < b[1] + b[3] + margin && a[1] + a[3] + margin > b[1];
}

/** Whether box [x, y, w, h] lies inside rect {left, top, right, bottom} (graph coordinates). */
export function boxInside(box, rect, margin = 0) {
  return box[0] >= rect.left + margin && box[1] >= rect.top + margin
    && box[0] + box[2] <= rect.right - margin && box[1] + box[3] <= rect.bottom - margin;
}

/** The first spot at or below `start` where a node of `size` overlaps none of `others`. */
export function freeSpot(start, size, others) {
  const [w, h] = size && size[0] > 0 ? size : DEFAULT_SIZE;
  const pos = [start[0], start[1]];
  const placed = others.filter((n) => n.pos && n.size);
  for (let tries = 0; tries < 40; tries += 1) {
    const box = boxOf(pos, [w, h]);
    const hit = placed.find((n) => overlaps(box, boxOf(n.pos, n.size), 20));
    if (!hit) return pos;
    pos[1] = hit.pos[1] + hit.size[1] + TITLE_HEIGHT + 30;
  }
  return pos;
}

/**
 * Where a new node of `size` goes around `center` (graph coordinates): the nearest spot on
 * rings of `step` around it that overlaps no node of `others` and lies inside `view` (the
 * visible part of the canvas, {left, top, right, bottom, covers(box)?: nothing drawn over
 * that box}); the centre itself when none does,
 * as ComfyUI's own model library drops its nodes mid-view. Returns node.pos (below the title).
 */
export function spotNear(center, size, others, view, { step = 40, rings = 12 } = {}) {
  const [w, h] = size && size[0] > 0 ? size : DEFAULT_SIZE;
  const origin = [center[0] - w / 2, center[1] - (h + TITLE_HEIGHT) / 2 + TITLE_HEIGHT];
  const placed = others.filter((n) => n.pos && n.size).map((n) => boxOf(n.pos, n.size));
  const inView = (box) => !view || (boxInside(box, view, 8) && (!view.covers || view.covers(box)));
  const free = (box) => !placed.some((other) => overlaps(box, other, 16));
  // first a free spot in view; in a view full of nodes, one in view on top of them (as the
  // core tab drops its node mid-view) rather than one hidden under a panel or a toast
  for (const fits of [(box) => inView(box) && free(box), inView]) {
    for (let ring = 0; ring <= rings; ring += 1) {
      const candidates = [];
      for (let dx = -ring; dx <= ring; dx += 1) {
        for (let dy = -ring; dy <= ring; dy += 1) {
          if (Math.max(Math.abs(dx), Math.abs(dy)) === ring) candidates.push([dx * step, dy * step]);
        }
      }
      candidates.sort((p, q) => Math.hypot(p[0], p[1]) - Math.hypot(q[0], q[1]));
      for (const [dx, dy] of candidates) {
        const pos = [Math.round(origin[0] + dx), Math.round(origin[1] + dy)];
        if (fits(boxOf(pos, [w, h]))) return pos;
      }
    }
  }
  return [Math.round(origin[0]), Math.round(origin[1])];
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
 * deps: {app, compat (createCompat), liteGraph() (ComfyUI's LiteGraph), settings,
 * toast(severity, detail, life), tr}.
 * Returns the graph actions the sidebar, the drop handler and prompt insertion share.
 */
export function createGraph({ app, compat, liteGraph, settings, toast, tr }) {
  const graph = () => compat.currentGraph();
  const canvas = () => app.canvas;

  /** The selected nodes (the selection also holds groups and reroutes). */
  function selectedNodes() {
    const items = canvas()?.selectedItems;
    return items ? [...items].filter(isNode) : [];
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
    canvas()?.setDirty?.(true, true);
    try { compat.captureChange(); } catch { /* not tracked */ }
  }

  /** The nodes (and their input slots) fed by output `slot` of `node`, read through each
   * input's link (output.links / input.link are deprecated in 1.5x). */
  function consumersOf(node, slot) {
    const out = [];
    for (const other of graph()?.nodes || []) {
      (other.inputs || []).forEach((_, index) => {
        const link = other.getInputLink?.(index);
        if (link && link.origin_id === node.id && link.origin_slot === slot) out.push({ node: other, slot: index });
      });
    }
    return out;
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

  /** The one selected LoRA Loader/Stacker (Model Library) node a LoRA goes into, else null. */
  function loraListTarget(item) {
    if (item?.model_type !== 'lora') return null;
    const nodes = selectedNodes();
    return nodes.length === 1 && isLoraListNode(nodes[0]) ? nodes[0] : null;
  }

  /** Add a LoRA to a list node's entries (its usage tips or the default strength), as one undo step. */
  function addToLoraList(node, item) {
    const g = graph();
    const strength = strengthOf(item);
    g?.beforeChange?.();
    let added;
    try { added = addLoraToListNode(node, item, { strength: strength.model, clipStrength: strength.clip }); } finally { g?.afterChange?.(); }
    markChanged();
    toast('success', tr(added ? 'addedToList' : 'inList', { name: itemName(item), node: nodeLabel(node) }), 2500);
    return added;
  }

  /** Whether `node` has the model widget of `item`'s loader (a drop on it applies the model). */
  function holdsModelOf(node, item) {
    const loader = loaderFor(item);
    return Boolean(node && loader && findWidget(node, loader.widget));
  }

  /** The canvas element (null before ComfyUI created it). */
  const canvasElement = () => canvas()?.canvas || null;

  /** The part of the canvas the user sees, in client pixels: the canvas runs under the top bar,
   * the icon bar, the sidebar and floating panels (1.5x draws them over it), so a grid of
   * points is probed with elementFromPoint. Returns the box around the points that hit the
   * canvas (or a node drawn as DOM) and `seen(x, y)`, whether the grid cell there did; null
   * when the canvas is not on screen. */
  function visibleClientRect() {
    const el = canvasElement();
    if (!el || typeof document.elementFromPoint !== 'function') return null;
    const r = el.getBoundingClientRect();
    const left = Math.max(r.left, 0);
    const top = Math.max(r.top, 0);
    const right = Math.min(r.right, window.innerWidth);
    const bottom = Math.min(r.bottom, window.innerHeight);
    if (right - left < 40 || bottom - top < 40) return null;
    const cols = 32;
    const rows = 20;
    const cw = (right - left) / cols;
    const ch = (bottom - top) / rows;
    const cells = new Array(cols * rows).fill(false);
    const box = { left: Infinity, top: Infinity, right: -Infinity, bottom: -Infinity };
    for (let i = 0; i < cols; i += 1) {
      for (let j = 0; j < rows; j += 1) {
        const x = left + (i + 0.5) * cw;
        const y = top + (j + 0.5) * ch;
        const hit = document.elementFromPoint(x, y);
        const onCanvas = hit === el || Boolean(hit && hit.closest && hit.closest('[data-node-id]') && !hit.closest('[data-lm-sidebar]'));
        if (!onCanvas) continue;
        cells[j * cols + i] = true;
        box.left = Math.min(box.left, x - cw / 2);
        box.top = Math.min(box.top, y - ch / 2);
        box.right = Math.max(box.right, x + cw / 2);
        box.bottom = Math.max(box.bottom, y + ch / 2);
      }
    }
    const lane = { left: right - TOAST_LANE.width, bottom: top + TOAST_LANE.height };
    const seen = (x, y) => {
      const i = Math.floor((x - left) / cw);
      const j = Math.floor((y - top) / ch);
      const inLane = x >= lane.left && y <= lane.bottom;
      return i >= 0 && j >= 0 && i < cols && j < rows && cells[j * cols + i] && !inLane;
    };
    const area = box.left < box.right ? box : { left, top, right, bottom };
    return { ...area, seen, step: [cw, ch], lane };
  }

  const toGraph = (x, y) => canvas().convertEventToCanvasOffset({ clientX: x, clientY: y });

  /** Graph → client pixels (LiteGraph draws a graph point at (p + offset) · scale). */
  function toClient(x, y) {
    const c = canvas();
    const r = canvasElement().getBoundingClientRect();
    return [(x + c.ds.offset[0]) * c.ds.scale + r.left, (y + c.ds.offset[1]) * c.ds.scale + r.top];
  }

  /** The visible part of the canvas in graph coordinates, with its centre and covers(box):
   * whether a graph box lies where nothing (a panel, a toast, the minimap) is drawn over the
   * canvas (null: unknown). */
  function visibleGraphRect() {
    const client = visibleClientRect();
    if (!client || !canvas()?.convertEventToCanvasOffset || !canvas()?.ds) return null;
    const [left, top] = toGraph(client.left, client.top);
    const [right, bottom] = toGraph(client.right, client.bottom);
    const covers = (box) => {
      const [x0, y0] = toClient(box[0], box[1]);
      const [x1, y1] = toClient(box[0] + box[2], box[1] + box[3]);
      const [sx, sy] = client.step;
      for (let x = x0; x <= x1 + 0.5; x += Math.max(4, Math.min(sx / 2, (x1 - x0) / 2 || 1))) {
        for (let y = y0; y <= y1 + 0.5; y += Math.max(4, Math.min(sy / 2, (y1 - y0) / 2 || 1))) {
          if (!client.seen(Math.min(x, x1), Math.min(y, y1))) return false;
        }
      }
      return true;
    };
    return { left, top, right, bottom, center: [(left + right) / 2, (top + bottom) / 2], client, covers };
  }

  /** Pan the canvas (keeping its zoom) so `node` sits in the middle of the visible part. */
  function scrollIntoView(node, view) {
    const c = canvas();
    const ds = c?.ds;
    if (!ds || !view) return;
    const box = boxOf(node.pos, node.size);
    const rect = canvasElement().getBoundingClientRect();
    // the middle of the visible part left of the toast lane, when the node fits there
    const { client } = view;
    const width = box[2] * ds.scale;
    const right = client.lane && client.lane.left - client.left >= width + 32 ? client.lane.left : client.right;
    const screen = [(client.left + right) / 2 - rect.left, (client.top + client.bottom) / 2 - rect.top];
    const centre = [box[0] + box[2] / 2, box[1] + box[3] / 2];
    // LiteGraph maps graph → screen as (p + offset) · scale
    ds.offset = [screen[0] / ds.scale - centre[0], screen[1] / ds.scale - centre[1]];
    c.setDirty?.(true, true);
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
      // read the consumers before connecting: the new link would count among them
      const consumers = consumersOf(source.node, slot).filter((c) => c.node !== node);
      source.node.connect(slot, node, input);
      if (output === undefined) continue;
      for (const consumer of consumers) node.connect(output, consumer.node, consumer.slot);
    }
  }

  /** Create the loader node for `item` (wired after the chain source when there is one):
   * at `pos` (a drop), else mid-view at a free spot, else beside its source; a node that ends
   * up outside the visible canvas is scrolled into view. */
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
    const view = pos ? null : visibleGraphRect();
    // beforeChange/afterChange bracket the edit as one undo step
    g.beforeChange?.();
    try {
      const others = (g.nodes || []).filter((n) => n !== node);
      if (pos) node.pos = [pos[0], pos[1]];
      else if (source) node.pos = freeSpot([source.node.pos[0] + (source.node.size?.[0] ?? 300) + 40, source.node.pos[1]], node.size, others);
      else node.pos = spotNear(view ? view.center : [100, 100], node.size, others, view);
      g.add(node);
      const listed = applyModel(node, item);
      if (source) wireAfter(source, node);
      canvas()?.deselectAll?.();
      canvas()?.select?.(node);
      if (view && !boxInside(boxOf(node.pos, node.size), view, 8)) scrollIntoView(node, view);
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

  /** A mouse/drag event's position in graph coordinates, and the node drawn there. */
  function pointOf(event) {
    const c = canvas();
    const pos = c.convertEventToCanvasOffset ? c.convertEventToCanvasOffset(event) : [event.offsetX, event.offsetY];
    return { pos, node: graph()?.getNodeOnPos?.(pos[0], pos[1]) || null };
  }

  return {
    graph, selectedNodes, chainSource, applyTarget, holdsModelOf,
    addModelNode, applyToNode, loraListTarget, addToLoraList, markChanged, canvasElement, pointOf, visibleClientRect,
  };
}
