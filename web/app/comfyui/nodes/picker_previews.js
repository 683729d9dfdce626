/**
 * Previews in ComfyUI's own model pickers: hovering an entry of a combo list (LiteGraph's
 * context menu, `.litecontextmenu .litemenu-entry`, as frontends 1.27 and 1.5x draw it) of a
 * LoRA, checkpoint or diffusion-model widget shows the floating card from the lookup route
 * (cached, debounced). One delegated listener on the document; it must not change the menu.
 */

/** Model widgets of ComfyUI's loaders → the listing prefix their names belong to. */
export const PICKER_WIDGETS = Object.freeze({
  lora_name: 'loras',
  ckpt_name: 'checkpoints',
  unet_name: 'checkpoints',
});

const HOVER_DELAY = 120; // ms: a pointer moving through the list does not ask for every entry

/** The string an entry stands for (LiteGraph keeps it on the element). */
export function entryValue(entry) {
  if (typeof entry.value === 'string') return entry.value;
  return entry.dataset?.value ?? entry.textContent ?? '';
}

/** The prefix to look `value` up under when `node` holds it in one of its model widgets. */
export function pickerPrefix(node, value) {
  for (const widget of node?.widgets || []) {
    const prefix = PICKER_WIDGETS[widget?.name];
    if (!prefix) continue;
    let values = widget.options?.values;
    try { if (typeof values === 'function') values = values(); } catch { values = []; }
    if (Array.isArray(values) && values.includes(value)) return prefix;
  }
  return null;
}

/** deps: {app, lookup (createLookup), card (createPreviewCard), enabled()}. Returns {start(), stop()}. */
export function createPickerPreviews({ app, lookup, card, enabled }) {
  let timer = 0;
  let current = null;

  function clear() {
    clearTimeout(timer);
    current = null;
    card.hide();
  }

  function onOver(event) {
    const entry = event.target?.closest?.('.litecontextmenu .litemenu-entry');
    if (!entry || entry === current) return;
    if (!enabled()) { clear(); return; }
    const value = entryValue(entry);
    const prefix = pickerPrefix(app.canvas?.current_node, value);
    clearTimeout(timer);
    if (!prefix) { current = null; card.hide(); return; }
    current = entry;
    timer = setTimeout(async () => {
      const found = await lookup.cards(prefix, [value]);
      // still the entry under the pointer, and still on the page
      if (current === entry && entry.isConnected) card.show(entry, found.get(value) ?? null, value);
    }, HOVER_DELAY);
  }

  function onOut(event) {
    const entry = event.target?.closest?.('.litecontextmenu .litemenu-entry');
    if (entry && !entry.contains(event.relatedTarget)) clear();
  }

  // the menu closes on a click anywhere or Escape: the card goes with it
  const onDown = (event) => { if (!event.target?.closest?.('[data-lm-preview]')) clear(); };
  const onKey = (event) => { if (event.key === 'Escape') clear(); };

  return {
    start() {
      document.addEventListener('mouseover', onOver, true);
      document.addEventListener('mouseout', onOut, true);
      document.addEventListener('pointerdown', onDown, true);
      document.addEventListener('keydown', onKey, true);
    },
    stop() {
      document.removeEventListener('mouseover', onOver, true);
      document.removeEventListener('mouseout', onOut, true);
      document.removeEventListener('pointerdown', onDown, true);
      document.removeEventListener('keydown', onKey, true);
      clear();
    },
  };
}
