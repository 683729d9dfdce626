/**
 * Trigger words as chips (the Trigger Words node): merging the LoRAs' lists, the chips a text
 * or a list of groups makes, and the `toggles` value (the words switched off, a JSON list, as
 * py/nodes/trigger_words_node.py parse_toggles reads it). Pure and DOM-free, mirroring
 * py/services/library/trigger_words.py so the editor shows what the node will output.
 */

const keyOf = (text) => String(text).split(/\s+/).filter(Boolean).join(' ').toLowerCase();
const clean = (text) => String(text ?? '').split(/\s+/).filter(Boolean).join(' ').replace(/^[\s,]+|[\s,]+$/g, '');

/** The entries of every list in order (the user's own first, then CivitAI's), each once. */
export function mergeTriggerWords(...lists) {
  const seen = new Set();
  const out = [];
  for (const list of lists) {
    for (const entry of list || []) {
      const text = clean(entry);
      if (text && !seen.has(keyOf(text))) { seen.add(keyOf(text)); out.push(text); }
    }
  }
  return out;
}

/** Prompt text split at commas. */
export function splitWords(text) {
  return String(text || '').split(',').map((p) => p.trim()).filter(Boolean);
}

/** The switched-off entries of a `toggles` value: a JSON list (or {disabled}), else one per line. */
export function parseToggles(value) {
  let items = value;
  if (!Array.isArray(value)) {
    const text = String(value ?? '').trim();
    if (!text) return [];
    try { items = JSON.parse(text); } catch { items = text.split(/\r?\n/); }
    if (items && !Array.isArray(items) && typeof items === 'object') items = items.disabled || [];
    if (!Array.isArray(items)) items = [text];
  }
  return items.map((item) => String(item).trim()).filter(Boolean);
}

export const serializeToggles = (disabled) => JSON.stringify(disabled);

/** Whether `chip` is switched off in `disabled` (case and spacing do not matter). */
export function isOff(disabled, chip) {
  const key = keyOf(chip);
  return disabled.some((entry) => keyOf(entry) === key);
}

/** `disabled` with `chip` switched (off when on, on when off). */
export function toggleChip(disabled, chip) {
  const key = keyOf(chip);
  return isOff(disabled, chip) ? disabled.filter((entry) => keyOf(entry) !== key) : [...disabled, clean(chip)];
}

/** The chips for `groups` (words or comma groups): [{text, on}]. */
export function chipsOf(groups, disabled) {
  return mergeTriggerWords(groups).map((text) => ({ text, on: !isOff(disabled, text) }));
}

/** `text` without the words of every `disabled` entry (trigger_words.apply_toggles). */
export function applyToggles(text, disabled) {
  const words = splitWords(text);
  const keys = words.map(keyOf);
  const drop = words.map(() => false);
  for (const entry of disabled) {
    const run = splitWords(entry).map(keyOf);
    if (!run.length) continue;
    for (let start = 0; start + run.length <= keys.length; start += 1) {
      const match = run.every((k, i) => keys[start + i] === k) && !drop.slice(start, start + run.length).some(Boolean);
      if (match) for (let i = start; i < start + run.length; i += 1) drop[i] = true;
    }
  }
  return words.filter((_, i) => !drop[i]).join(', ');
}
