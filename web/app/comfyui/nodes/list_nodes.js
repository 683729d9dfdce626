/**
 * Which nodes hold a LoRA list (LoRA Loader / Stacker (Model Library)) and adding a LoRA to
 * one: through its widget when the editor made one, else straight into its `loras` value, so
 * the sidebar, the page's "Add to workflow" and scripts share one way in. No DOM of its own.
 */
import { addEntry, parseStored, serialize } from './lora_list_model.js';

/** Node types (py/nodes NODE_CLASS_MAPPINGS) whose `loras` input is the list widget. */
export const LIST_NODE_TYPES = Object.freeze(['LmLoraLoader', 'LmLoraStacker']);
export const TRIGGER_NODE_TYPE = 'LmTriggerWords';

/** Where a node keeps its list widget's controller (set by node_widgets.js). */
export const LIST_CONTROLLER = Symbol.for('modelLibrary.loraList');

const typeOf = (node) => node?.comfyClass || node?.type || '';

/** Whether `node` is a LoRA Loader or Stacker of the model library. */
export function isLoraListNode(node) {
  return Boolean(node) && (Boolean(node[LIST_CONTROLLER]) || LIST_NODE_TYPES.includes(typeOf(node)));
}

/**
 * Add `item` (a listing item or lookup card: relative_path, sha256, usage_tips) to the node's
 * list with {strength, clipStrength} (default: the item's usage tips). Returns true when it is
 * a new entry, false when it was listed already (it is switched on) or the node has no list.
 */
export function addLoraToListNode(node, item, { strength, clipStrength } = {}) {
  if (!isLoraListNode(node)) return false;
  const controller = node[LIST_CONTROLLER];
  if (controller) return controller.add(item, { strength, clipStrength });
  const widget = (node.widgets || []).find((w) => w?.name === 'loras');
  if (!widget) return false;
  const result = addEntry(parseStored(widget.value), item, { strength, clipStrength });
  if (result.index < 0) return false;
  const old = widget.value;
  widget.value = serialize(result.entries);
  widget.callback?.(widget.value);
  node.onWidgetChanged?.('loras', widget.value, old, widget);
  return result.added;
}
