/**
 * The editor side of the library's nodes: the LoRA list widget on LoRA Loader / Stacker (the
 * `loras` input stays the stored value, its textarea hidden) and the chips on Trigger Words
 * (the `toggles` input stays the stored value). Chips of a Trigger Words node fed by one of our
 * lists follow that list as it is edited (through the lookup route); otherwise they show what
 * the last run reported. Must not import ComfyUI's scripts: `app` and `compat` come in as deps.
 */
import { formatSyntax, parseStored, serialize } from './lora_list_model.js';
import { mergeTriggerWords, parseToggles, serializeToggles } from './trigger_words_model.js';
import { createLoraListWidget } from './lora_list_widget.js';
import { createTriggerChips } from './trigger_chips_widget.js';
import { LIST_CONTROLLER, LIST_NODE_TYPES, TRIGGER_NODE_TYPE, isLoraListNode } from './list_nodes.js';

const CHIPS = Symbol.for('modelLibrary.triggerChips');

const findWidget = (node, name) => (node?.widgets || []).find((w) => w?.name === name) || null;

/** Chain `fn` after `proto[name]` (ComfyUI's and other extensions' hooks keep running). */
function chain(proto, name, fn) {
  const original = proto[name];
  proto[name] = function chained(...args) {
    const result = original?.apply(this, args);
    fn.apply(this, args);
    return result;
  };
}

/** The node feeding input `name` of `node`, with the output slot's name, else null. */
function upstream(node, name) {
  const slot = (node.inputs || []).findIndex((input) => input?.name === name);
  if (slot < 0) return null;
  const link = node.getInputLink ? node.getInputLink(slot) : node.graph?.links?.[node.inputs[slot].link];
  if (!link) return null;
  const origin = node.graph?.getNodeById?.(link.origin_id);
  if (!origin) return null;
  return { node: origin, output: origin.outputs?.[link.origin_slot]?.name ?? '' };
}

/** The active entries a list node outputs trigger words for: the stackers chained into its
 * `lora_stack` first (as the node applies them), then its own. */
export function chainEntries(node, seen = new Set()) {
  if (!node || seen.has(node)) return [];
  seen.add(node);
  const from = upstream(node, 'lora_stack');
  const before = from && isLoraListNode(from.node) ? chainEntries(from.node, seen) : [];
  const own = parseStored(findWidget(node, 'loras')?.value).filter((e) => e.active);
  return [...before, ...own];
}

/**
 * deps: {app, compat, client, lookup, card (createPreviewCard), tr, defaultStrength()}.
 * Returns {beforeRegisterNodeDef(nodeType, nodeData), refreshChips(), syntaxOf(node)}.
 */
export function createNodeWidgets({ app, compat, client, lookup, card, tr, defaultStrength }) {
  let refreshTimer = 0;

  function markChanged(node) {
    app.canvas?.setDirty?.(true, true);
    try { compat.captureChange(); } catch { /* not tracked */ }
    node.graph?.setDirtyCanvas?.(true, true);
  }

  /** Grow the node when its widget needs more room (never shrink what the user sized). */
  function fit(node) {
    const min = node.computeSize?.();
    if (min && node.size && (node.size[1] < min[1] || node.size[0] < min[0])) {
      node.setSize?.([Math.max(node.size[0], min[0]), Math.max(node.size[1], min[1])]);
    }
    app.canvas?.setDirty?.(true, true);
  }

  /** A new node: as tall as its widgets need (ComfyUI sized it for the hidden textarea). */
  function fitNew(node) {
    const min = node.computeSize?.();
    if (min && node.size) node.setSize?.([Math.max(node.size[0], min[0]), min[1]]);
    app.canvas?.setDirty?.(true, true);
  }

  /** Hide a stored-value widget. 1.27 lays out hidden canvas widgets at full height; 1.5x skips them. */
  function hideStored(widget) {
    widget.hidden = true;
    if (widget.options) widget.options.hidden = true;
    if (widget.element) widget.type = 'hidden'; // a DOM widget (the textarea): 1.27 gives 'hidden' no room
    else widget.computeSize = () => [0, -4]; // a canvas widget: -4 offsets the gap LiteGraph adds
  }

  function allNodes() {
    const graphs = new Set([compat.currentGraph(), app.graph].filter(Boolean));
    return [...graphs].flatMap((g) => g.nodes || g._nodes || []);
  }

  /** Update the chips of every Trigger Words node (soon: edits come in bursts). */
  function refreshChips() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => {
      for (const node of allNodes()) node[CHIPS]?.refresh();
    }, 30);
  }

  function attachList(node) {
    const stored = findWidget(node, 'loras');
    if (!stored || node[LIST_CONTROLLER]) return;
    // the textarea stays the value ComfyUI saves and sends; the list is its editor
    hideStored(stored);
    const ui = createLoraListWidget({
      client, lookup, card, tr, defaultStrength,
      onChange(entries) {
        const old = stored.value;
        const value = serialize(entries);
        stored.value = value;
        stored.callback?.(value);
        node.onWidgetChanged?.('loras', value, old, stored);
        fit(node);
        markChanged(node);
        refreshChips();
      },
    });
    ui.setEntries(parseStored(stored.value));
    const widget = node.addDOMWidget('lm_lora_list', 'lm-lora-list', ui.element, {
      serialize: false, hideOnZoom: false, margin: 4,
      getValue: () => stored.value, setValue: () => {},
      getMinHeight: () => ui.minHeight(),
    });
    widget.serialize = false;
    node[LIST_CONTROLLER] = {
      add: (item, opts) => ui.add(item, opts),
      entries: () => ui.entries(),
      /** Show the stored value again (a workflow was loaded, a script set it). */
      sync() { ui.setEntries(parseStored(stored.value)); fit(node); refreshChips(); },
    };
    chain(node, 'onConfigure', () => node[LIST_CONTROLLER].sync());
    chain(node, 'onConnectionsChange', refreshChips);
    chain(node, 'onRemoved', () => { ui.destroy(); refreshChips(); });
    // onNodeCreated runs before a saved size is configured: a loaded node keeps its own
    fitNew(node);
  }

  function attachChips(node) {
    const toggles = findWidget(node, 'toggles');
    if (!toggles || node[CHIPS]) return;
    hideStored(toggles);
    let seq = 0;
    const chips = createTriggerChips({
      tr,
      onToggle(disabled) {
        const old = toggles.value;
        toggles.value = serializeToggles(disabled);
        toggles.callback?.(toggles.value);
        node.onWidgetChanged?.('toggles', toggles.value, old, toggles);
        markChanged(node);
      },
    });
    chips.setDisabled(parseToggles(toggles.value));
    node.addDOMWidget('lm_trigger_chips', 'lm-trigger-chips', chips.element, {
      serialize: false, hideOnZoom: false, margin: 4,
      getValue: () => toggles.value, setValue: () => {},
      getMinHeight: () => chips.minHeight(),
    }).serialize = false;

    const source = () => {
      const from = upstream(node, 'trigger_words');
      return from && isLoraListNode(from.node) && from.output === 'trigger_words' ? from.node : null;
    };
    node[CHIPS] = {
      chips,
      linked: () => Boolean(source()),
      async refresh() {
        const list = source();
        const mine = ++seq;
        if (!list) {
          // no longer fed by a list: keep what a run showed, drop what the list showed
          if (chips.element.dataset.source === 'loras') chips.setWords([], 'none');
          return;
        }
        const names = chainEntries(list).map((e) => e.name);
        const cards = names.length ? await lookup.cards('loras', names) : new Map();
        if (mine !== seq) return;
        chips.setWords(mergeTriggerWords(...names.map((n) => cards.get(n)?.trigger_words || [])), 'loras');
        fit(node);
      },
    };
    chain(node, 'onConfigure', () => { chips.setDisabled(parseToggles(toggles.value)); refreshChips(); });
    chain(node, 'onConnectionsChange', refreshChips);
    chain(node, 'onExecuted', (output) => {
      // a list upstream knows the groups better than the run's comma split
      if (node[CHIPS].linked()) return;
      const words = Array.isArray(output?.words) ? output.words : [];
      chips.setWords(words, 'run');
      fit(node);
    });
    refreshChips();
    fitNew(node);
  }

  function beforeRegisterNodeDef(nodeType, nodeData) {
    const name = nodeData?.name;
    if (LIST_NODE_TYPES.includes(name)) chain(nodeType.prototype, 'onNodeCreated', function created() { attachList(this); });
    else if (name === TRIGGER_NODE_TYPE) chain(nodeType.prototype, 'onNodeCreated', function created() { attachChips(this); });
  }

  return {
    beforeRegisterNodeDef,
    refreshChips,
    syntaxOf: (node) => formatSyntax(parseStored(findWidget(node, 'loras')?.value)),
  };
}
