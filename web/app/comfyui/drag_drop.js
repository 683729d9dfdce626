/**
 * Drag and drop of sidebar cards: what a dragged card carries, and drops on the canvas (a new
 * loader at the drop point, or the model applied to the loader dropped on) or on a prompt box
 * (the model's prompt text). Its handlers are installed on the document by the entry, for the
 * life of the page; it must not import ComfyUI's scripts (graph and prompt come in as deps).
 */
import { embeddingSyntax } from '../lib/model_text.js';
import { itemName } from './graph.js';
import { isPromptField } from './prompt.js';
import { ROOT_CLASS } from './sidebar.js';

/** The drag data type of a card: the listing item as JSON (text/plain carries its syntax). */
export const DRAG_MIME = 'application/x-lm-model';

const carriesModel = (event) => Boolean(event.dataTransfer) && [...event.dataTransfer.types].includes(DRAG_MIME);

/** deps: {graph (createGraph), prompt (createPrompt), toast(severity, detail, life), tr}. */
export function createDragDrop({ graph, prompt, toast, tr }) {
  // the item being dragged, for a drop whose DataTransfer data cannot be read back
  let dragged = null;

  /** A drop on the graph: the canvas itself, or a node drawn as DOM (frontend 1.5x "Vue nodes").
   * The canvas' parent also holds the sidebar and menus in 1.5x, so containment is not enough. */
  function isOnCanvas(event) {
    const el = graph.canvasElement();
    const target = event.target;
    if (!el || !(target instanceof Element)) return false;
    if (target === el) return true;
    return Boolean(target.closest('[data-node-id]')) && !target.closest(`.${ROOT_CLASS}, .side-bar-panel, input, textarea, select`);
  }

  /** The panel's onDragStart: the card carries the item and, for other drop targets, its text. */
  function start(item, event) {
    dragged = item;
    const text = prompt.syntaxOf(item) || item.relative_path || '';
    event.dataTransfer.effectAllowed = 'copy';
    event.dataTransfer.setData(DRAG_MIME, JSON.stringify(item));
    event.dataTransfer.setData('text/plain', text);
  }

  /** document dragover (capture): accept our cards over the canvas and prompt boxes. */
  function onDragOver(event) {
    if (!carriesModel(event)) return;
    if (isPromptField(event.target) || isOnCanvas(event)) {
      event.preventDefault();
      event.dataTransfer.dropEffect = 'copy';
    }
  }

  function drop(event) {
    if (!carriesModel(event)) return;
    let item = dragged;
    try { item = JSON.parse(event.dataTransfer.getData(DRAG_MIME)) || item; } catch { /* use the remembered item */ }
    if (!item) return;
    const onField = isPromptField(event.target);
    if (!onField && !isOnCanvas(event)) return;
    // ComfyUI's own document drop handler would try to load the data as a workflow file
    event.preventDefault();
    event.stopPropagation();
    if (onField) {
      const text = prompt.syntaxOf(item);
      if (text) prompt.insertPromptText(text, { field: event.target });
      return;
    }
    const { pos, node } = graph.pointOf(event);
    if (item.model_type === 'embedding') {
      prompt.insertPromptText(embeddingSyntax(item), { node: node || undefined });
      return;
    }
    if (graph.holdsModelOf(node, item)) {
      graph.applyToNode(node, item);
      return;
    }
    if (graph.addModelNode(item, { pos })) toast('success', tr('added', { name: itemName(item) }), 2500);
  }

  /** document drop (capture). A failure is logged, never thrown into ComfyUI's handlers. */
  function onDrop(event) {
    try { drop(event); } catch (err) { console.error('[model library] drop failed', err); }
  }

  return { start, onDragOver, onDrop };
}
