/**
 * Texts of the node widgets, the picker previews and "add to workflow" toasts: English defaults
 * here, translations from ComfyUI's custom-node i18n (`GET /i18n` merges locales/<lang>/main.json),
 * key `modelLibraryNodes.<key>`. Must not import ComfyUI's scripts: `api` and the settings come in.
 */
import { libraryLang } from '../texts.js';

export const NODE_TEXT = Object.freeze({
  title: 'LoRAs & Models', // the toasts' heading, as the sidebar's
  addPlaceholder: 'Add a LoRA: type a name, tag or trigger word, or paste <lora:…>',
  listEmpty: 'No LoRAs yet.',
  noMatches: 'No LoRA matches.',
  alreadyInList: 'Already in the list',
  dragToReorder: 'Drag to reorder',
  toggleLora: 'Use this LoRA',
  modelStrength: 'Model strength',
  clipStrength: 'CLIP strength',
  moveUp: 'Move up',
  moveDown: 'Move down',
  removeLora: 'Remove',
  chipsHint: 'Trigger words appear here once the node is connected to a LoRA Loader or has run.',
  noTriggerWords: 'The LoRAs in the list have no trigger words.',
  chipOn: 'On: click to leave it out',
  chipOff: 'Off: click to use it',
  noPreview: 'No preview',
  unknownBase: 'Unknown base model',
  usedTimes: 'used {count}×',
  notInLibrary: 'Not in the model library.',
  addedToList: 'Added {name} to “{node}”.',
  inList: '{name} is already in “{node}”: switched on.',
  added: 'Added {name} to the workflow.',
  cannotAdd: 'Cannot add {name} to the workflow here.',
});

function interpolate(text, params) {
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (m, key) => (params[key] === undefined ? m : String(params[key])));
}

/** deps: {api, settings (createSettings)}. Returns {load(), tr(key, params)}. */
export function createNodeTexts({ api, settings }) {
  let messages = {};
  let loading = null;

  function load() {
    if (!loading) {
      loading = api.fetchApi('/i18n')
        .then((res) => (res.ok ? res.json() : {}))
        .then((data) => { messages = data && typeof data === 'object' ? data : {}; })
        .catch(() => { messages = {}; });
    }
    return loading;
  }

  function tr(key, params) {
    const locale = String(settings.get('Comfy.Locale', 'en'));
    for (const code of [locale, libraryLang(locale), 'en']) {
      const text = messages[code]?.modelLibraryNodes?.[key];
      if (typeof text === 'string') return interpolate(text, params);
    }
    return interpolate(NODE_TEXT[key] ?? key, params);
  }

  return { load, tr };
}
