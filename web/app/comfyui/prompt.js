/**
 * Prompt insertion: embedding and LoRA text into the prompt box the user last focused (or the
 * one text widget of the selected node), with ", " separators, as ComfyUI sees a typed edit.
 * Remembers the last focused prompt box; it adds no listeners itself (the entry forwards
 * `focusin` to remember()) and must not import ComfyUI's scripts: the graph comes in as a dep.
 */
import { embeddingSyntax, loraSyntax } from '../lib/model_text.js';
import { SETTING } from './settings.js';
import { ROOT_CLASS } from './sidebar.js';

/** Insert `text` into `value` replacing [start, end), with ", " separators where needed. */
export function spliceWithSeparators(value, start, end, text) {
  let before = value.slice(0, start);
  const after = value.slice(end);
  let lead = '';
  if (before.trim() && !/[,(]\s*$/.test(before)) { before = before.trimEnd(); lead = ', '; } else if (/,$/.test(before)) lead = ' ';
  const trail = after.trim() && !/^\s*[,)]/.test(after) ? (/^\s/.test(after) ? ',' : ', ') : '';
  return { value: before + lead + text + trail + after, caret: before.length + lead.length + text.length };
}

/** A prompt box of the workflow: an editable textarea that is not part of our own UI. */
export function isPromptField(el) {
  return el instanceof HTMLTextAreaElement && !el.readOnly && !el.disabled
    && !el.closest(`.${ROOT_CLASS}, .lm-layer, .lm-modal, .lm-panel`);
}

function textWidgetOf(node) {
  return (node?.widgets || []).find((w) => w && (w.element instanceof HTMLTextAreaElement || w.inputEl instanceof HTMLTextAreaElement)) || null;
}

/** deps: {graph (createGraph), settings, toast(severity, detail, life), tr}. */
export function createPrompt({ graph, settings, toast, tr }) {
  let lastField = null;

  /** Remember `el` when it is a prompt box (the entry calls this on every focusin): clicking
   * a sidebar button takes the focus away, so "the focused prompt" is the last one. */
  function remember(el) {
    if (isPromptField(el)) lastField = el;
  }

  /** The last focused prompt box while it is still in the document, else null. */
  const focusedField = () => (lastField && lastField.isConnected ? lastField : null);

  /** The node owning a DOM text widget (to name it in hints and toasts). */
  function nodeOfField(el) {
    for (const node of graph.graph()?.nodes || []) {
      for (const widget of node.widgets || []) {
        if (widget.element === el || widget.inputEl === el) return node;
      }
    }
    return null;
  }

  /** The prompt text of a model: `embedding:name` or `<lora:name:strength>` ('' for others). */
  function syntaxOf(item) {
    if (item.model_type === 'embedding') return embeddingSyntax(item);
    if (item.model_type === 'lora') return loraSyntax(item, Number(settings.get(SETTING.strength, 1)));
    return '';
  }

  /** Insert `text` at the caret of `field` and tell ComfyUI it changed (input/change events
   * update the widget value; markChanged the workflow). */
  function insertIntoField(field, text) {
    const start = field.selectionStart ?? field.value.length;
    const end = field.selectionEnd ?? start;
    const next = spliceWithSeparators(field.value, start, end, text);
    field.value = next.value;
    field.setSelectionRange(next.caret, next.caret);
    field.dispatchEvent(new Event('input', { bubbles: true }));
    field.dispatchEvent(new Event('change', { bubbles: true }));
    field.focus({ preventScroll: true });
    graph.markChanged();
  }

  /** Insert into `field`, else the last focused prompt box, else the one text widget of
   * `node` (or of the selected nodes); without a target say what to do. */
  function insertPromptText(text, { field = null, node = null } = {}) {
    let target = field || focusedField();
    if (!target) {
      const candidates = node ? [node] : graph.selectedNodes();
      const widgets = candidates.map(textWidgetOf).filter(Boolean);
      if (widgets.length === 1) target = widgets[0].element || widgets[0].inputEl;
    }
    if (!target) { toast('info', tr('noTarget'), 5000); return false; }
    insertIntoField(target, text);
    toast('success', tr('inserted', { name: text }), 2500);
    return true;
  }

  return { remember, focusedField, nodeOfField, syntaxOf, insertPromptText };
}
