/**
 * The LoRA list widget's DOM (LoRA Loader / Stacker): one row per entry (on/off, name, model
 * and clip strength, up, down, remove, a grip to drag), and a search box suggesting LoRAs from
 * the library (keyboard and mouse) into which `<lora:…>` text can be pasted. Owns its element
 * and its suggestion popup; the entries live in lora_list_model.js terms and every edit is
 * reported through `onChange(entries)` (the node code stores them in the `loras` widget).
 */
import {
  addEntry, displayName, hasLoraSyntax, indexOfName, mergeEntries, moveEntry, parseLoraSyntax, removeEntry,
  resolveEntry, setStrength, toggleEntry,
} from './lora_list_model.js';

const SUGGESTIONS = 12;
const SEARCH_DELAY = 150; // ms after the last key
export const ROW_HEIGHT = 28;
const CHROME_HEIGHT = 36; // the search box (26), the gap above it (4) and the widget's margins (2 × 4), less a row's gap
const EMPTY_HEIGHT = 62; // the "no LoRAs" line instead of rows

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'text') node.textContent = value;
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  node.append(...children.filter(Boolean));
  return node;
}

const strengthText = (value) => String(Number(value.toFixed(3)));

/**
 * deps: {client (API client), lookup (createLookup), card (createPreviewCard), tr(key, params),
 * defaultStrength() (the setting), onChange(entries)}.
 * Returns {element, entries(), setEntries(entries), add(item, opts), minHeight(), destroy()}.
 */
export function createLoraListWidget({ client, lookup, card, tr, defaultStrength, onChange }) {
  let entries = [];
  let suggestions = [];
  let highlighted = -1;
  let searchTimer = 0;
  let searchSeq = 0;
  let drag = null;

  const list = h('div', { class: 'lm-node-loras-list', role: 'list' });
  const empty = h('div', { class: 'lm-node-loras-empty', text: tr('listEmpty') });
  const input = h('input', {
    class: 'lm-node-loras-search', type: 'text', placeholder: tr('addPlaceholder'), 'aria-label': tr('addPlaceholder'),
    autocomplete: 'off', spellcheck: 'false', role: 'combobox', 'aria-expanded': 'false', 'aria-autocomplete': 'list',
  });
  const element = h('div', { class: 'lm-node-loras', dataset: { lmLoraList: '1' } }, list, empty,
    h('div', { class: 'lm-node-loras-add' }, input));
  const popup = h('div', { class: 'lm-node-suggest', role: 'listbox', dataset: { lmSuggest: '1' } });
  popup.hidden = true;

  function render() {
    empty.hidden = entries.length > 0;
    list.replaceChildren(...entries.map((entry, index) => {
      const row = h('div', {
        class: `lm-node-lora${entry.active ? '' : ' lm-node-lora--off'}`, role: 'listitem',
        dataset: { index: String(index), name: entry.name },
      },
      h('span', { class: 'lm-node-lora-grip', title: tr('dragToReorder'), 'aria-hidden': 'true', text: '⋮⋮' }),
      h('input', { class: 'lm-node-lora-on', type: 'checkbox', title: tr('toggleLora'), 'aria-label': tr('toggleLora'), checked: entry.active, dataset: { action: 'toggle' } }),
      h('span', { class: 'lm-node-lora-name', title: entry.name, text: displayName(entry) }),
      h('input', { class: 'lm-node-lora-strength', type: 'number', step: '0.05', min: '-100', max: '100', value: strengthText(entry.strength), title: tr('modelStrength'), 'aria-label': tr('modelStrength'), dataset: { field: 'strength' } }),
      h('input', { class: 'lm-node-lora-clip', type: 'number', step: '0.05', min: '-100', max: '100', value: strengthText(entry.clip_strength), title: tr('clipStrength'), 'aria-label': tr('clipStrength'), dataset: { field: 'clip_strength' } }),
      h('button', { class: 'lm-node-lora-btn', type: 'button', title: tr('moveUp'), 'aria-label': tr('moveUp'), disabled: index === 0, dataset: { action: 'up' }, text: '▲' }),
      h('button', { class: 'lm-node-lora-btn', type: 'button', title: tr('moveDown'), 'aria-label': tr('moveDown'), disabled: index === entries.length - 1, dataset: { action: 'down' }, text: '▼' }),
      h('button', { class: 'lm-node-lora-btn lm-node-lora-remove', type: 'button', title: tr('removeLora'), 'aria-label': tr('removeLora'), dataset: { action: 'remove' }, text: '✕' }));
      return row;
    }));
  }

  function commit(next) {
    entries = next;
    render();
    onChange(entries);
  }

  const rowIndex = (target) => Number(target.closest('.lm-node-lora')?.dataset.index ?? -1);

  function onClick(event) {
    const action = event.target.closest('[data-action]')?.dataset.action;
    const index = rowIndex(event.target);
    if (!action || index < 0) return;
    if (action === 'toggle') commit(toggleEntry(entries, index, event.target.checked));
    else if (action === 'up') commit(moveEntry(entries, index, index - 1));
    else if (action === 'down') commit(moveEntry(entries, index, index + 1));
    else if (action === 'remove') commit(removeEntry(entries, index));
  }

  function onStrength(event) {
    const field = event.target.dataset.field;
    const index = rowIndex(event.target);
    if (!field || index < 0) return;
    const next = setStrength(entries, index, field, event.target.value);
    event.target.value = strengthText(next[index][field]);
    if (next[index][field] !== entries[index][field]) commit(next);
  }

  // --- reorder by dragging the grip (pointer events: HTML drag and drop would reach the page's drop handlers)
  function onPointerDown(event) {
    const grip = event.target.closest('.lm-node-lora-grip');
    if (!grip || event.button !== 0) return;
    event.preventDefault();
    event.stopPropagation();
    drag = { from: rowIndex(grip), to: rowIndex(grip), pointer: event.pointerId };
    grip.setPointerCapture?.(event.pointerId);
    list.children[drag.from]?.classList.add('lm-node-lora--dragging');
  }

  function onPointerMove(event) {
    if (!drag) return;
    const rows = [...list.children];
    // the gap the pointer is in: before row `gap` (rows.length: after the last)
    let gap = rows.length;
    for (let i = 0; i < rows.length; i += 1) {
      const box = rows[i].getBoundingClientRect();
      if (event.clientY < box.top + box.height / 2) { gap = i; break; }
    }
    drag.to = gap > drag.from ? gap - 1 : gap;
    rows.forEach((row, i) => row.classList.toggle('lm-node-lora--drop', i === drag.to && drag.to !== drag.from));
  }

  function onPointerUp() {
    if (!drag) return;
    const { from, to } = drag;
    drag = null;
    if (to !== from) commit(moveEntry(entries, from, to));
    else render();
  }

  // --- suggestions
  function closeSuggestions() {
    popup.hidden = true;
    input.setAttribute('aria-expanded', 'false');
    suggestions = [];
    highlighted = -1;
    card.hide();
  }

  function placePopup() {
    const box = input.getBoundingClientRect();
    popup.style.left = `${Math.round(box.left)}px`;
    popup.style.minWidth = `${Math.round(Math.max(box.width, 260))}px`;
    const below = window.innerHeight - box.bottom;
    if (below < 240 && box.top > below) {
      popup.style.top = '';
      popup.style.bottom = `${Math.round(window.innerHeight - box.top + 2)}px`;
    } else {
      popup.style.bottom = '';
      popup.style.top = `${Math.round(box.bottom + 2)}px`;
    }
  }

  function highlight(index) {
    highlighted = index;
    [...popup.children].forEach((row, i) => {
      const on = i === index;
      row.classList.toggle('lm-node-suggest-item--active', on);
      row.setAttribute('aria-selected', on ? 'true' : 'false');
      if (on) {
        row.scrollIntoView({ block: 'nearest' });
        card.show(row, suggestions[i], suggestions[i].file_name);
      }
    });
  }

  function showSuggestions(items) {
    suggestions = items;
    if (!popup.isConnected) document.body.append(popup);
    if (!items.length) {
      popup.replaceChildren(h('div', { class: 'lm-node-suggest-none', text: tr('noMatches') }));
    } else {
      popup.replaceChildren(...items.map((item, i) => {
        const thumb = item.preview_url && item.preview_type !== 'video'
          ? h('img', { class: 'lm-node-suggest-thumb', src: item.preview_url, alt: '', loading: 'lazy', decoding: 'async' })
          : h('span', { class: 'lm-node-suggest-thumb lm-node-suggest-thumb--none' });
        const inList = indexOfName(entries, item.relative_path || item.file_name) >= 0;
        return h('div', { class: 'lm-node-suggest-item', role: 'option', 'aria-selected': 'false', dataset: { index: String(i) } },
          thumb,
          h('span', { class: 'lm-node-suggest-text' },
            h('span', { class: 'lm-node-suggest-name', text: item.model_name || item.file_name }),
            h('span', { class: 'lm-node-suggest-path', text: item.relative_path || item.file_name })),
          h('span', { class: 'lm-node-suggest-base', text: item.base_model || '' }),
          inList ? h('span', { class: 'lm-node-suggest-in', title: tr('alreadyInList'), text: '✓' }) : null);
      }));
    }
    popup.hidden = false;
    input.setAttribute('aria-expanded', 'true');
    placePopup();
    highlighted = -1;
    if (items.length) highlight(0);
  }

  async function search(text) {
    const seq = ++searchSeq;
    let items = [];
    try {
      const answer = await client.get('/loras/list', {
        search: text, page_size: SUGGESTIONS, search_filename: 'true', search_modelname: 'true',
        search_tags: 'true', search_trigger_words: 'true',
      });
      items = answer.items || [];
    } catch (err) {
      console.warn('[model library] LoRA search failed', err);
    }
    if (seq !== searchSeq || document.activeElement !== input) return;
    showSuggestions(items);
  }

  function onInput() {
    clearTimeout(searchTimer);
    const text = input.value.trim();
    if (!text) { closeSuggestions(); return; }
    searchTimer = setTimeout(() => search(text), SEARCH_DELAY);
  }

  function choose(index) {
    const item = suggestions[index];
    if (!item) return;
    add(item);
    input.value = '';
    closeSuggestions();
    input.focus();
  }

  function onKeyDown(event) {
    // keys typed here are ours: not ComfyUI's shortcuts, nor LiteGraph's canvas keys
    event.stopPropagation();
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      if (popup.hidden) { if (input.value.trim()) search(input.value.trim()); return; }
      event.preventDefault();
      const n = suggestions.length;
      if (n) highlight((highlighted + (event.key === 'ArrowDown' ? 1 : n - 1)) % n);
    } else if (event.key === 'Enter') {
      event.preventDefault();
      if (!popup.hidden && highlighted >= 0) choose(highlighted);
      else if (hasLoraSyntax(input.value)) { pasteSyntax(input.value); input.value = ''; }
    } else if (event.key === 'Escape') {
      event.preventDefault();
      closeSuggestions();
    }
  }

  function onPopupPointer(event) {
    const row = event.target.closest('.lm-node-suggest-item');
    if (!row) return;
    event.preventDefault(); // keep the focus in the input
    choose(Number(row.dataset.index));
  }

  function onPopupOver(event) {
    const row = event.target.closest('.lm-node-suggest-item');
    if (row && Number(row.dataset.index) !== highlighted) highlight(Number(row.dataset.index));
  }

  /** Pasted `<lora:…>` text: its entries join the list, then get their library names and hashes. */
  async function pasteSyntax(text) {
    const pasted = parseLoraSyntax(text);
    if (!pasted.length) return;
    commit(mergeEntries(entries, pasted));
    const found = await lookup.cards('loras', pasted.map((e) => e.name));
    let next = entries;
    for (const entry of pasted) {
      const cardFor = found.get(entry.name);
      const index = indexOfName(next, entry.name);
      if (cardFor && index >= 0) next = resolveEntry(next, index, cardFor);
    }
    if (next !== entries) commit(next);
  }

  function onPaste(event) {
    const text = event.clipboardData?.getData('text/plain') || '';
    if (!hasLoraSyntax(text)) return;
    event.preventDefault();
    event.stopPropagation(); // not ComfyUI's paste (it would paste nodes)
    pasteSyntax(text);
  }

  /** Add a LoRA (a listing item or lookup card); opts {strength, clipStrength}. Returns whether
   * it is a new entry (an entry already listed is switched on). */
  function add(item, opts = {}) {
    const result = addEntry(entries, item, { ...opts, fallback: defaultStrength() });
    if (result.index >= 0) commit(result.entries);
    return result.added;
  }

  const stop = (event) => event.stopPropagation();
  element.addEventListener('click', onClick);
  element.addEventListener('change', onStrength);
  element.addEventListener('pointerdown', onPointerDown);
  element.addEventListener('pointermove', onPointerMove);
  element.addEventListener('pointerup', onPointerUp);
  element.addEventListener('pointercancel', onPointerUp);
  element.addEventListener('paste', onPaste);
  element.addEventListener('keydown', (event) => { if (event.target !== input && event.target.tagName === 'INPUT') stop(event); });
  input.addEventListener('input', onInput);
  input.addEventListener('keydown', onKeyDown);
  input.addEventListener('blur', () => setTimeout(() => { if (document.activeElement !== input) closeSuggestions(); }, 150));
  popup.addEventListener('pointerdown', onPopupPointer);
  popup.addEventListener('mouseover', onPopupOver);
  // a wheel over the list scrolls the page's canvas otherwise (1.5x forwards it)
  element.addEventListener('wheel', (event) => { if (list.scrollHeight > list.clientHeight) stop(event); }, { passive: true });

  render();

  return {
    element,
    entries: () => entries,
    setEntries(next) { entries = next.slice(); render(); },
    add,
    pasteSyntax,
    minHeight: () => (entries.length ? CHROME_HEIGHT + entries.length * ROW_HEIGHT : EMPTY_HEIGHT),
    destroy() { closeSuggestions(); popup.remove(); clearTimeout(searchTimer); },
  };
}
