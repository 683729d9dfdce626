/**
 * Texts of the node widgets, the picker previews and "add to workflow" toasts: English defaults
 * here, translations from ComfyUI's custom-node i18n (`GET /i18n` merges locales/<lang>/main.json),
 * key `modelLibraryNodes.<key>`. Must not import ComfyUI's scripts: `api` and the settings come in.
 */
import { createTexts } from '../texts.js';

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

/** deps: {api, settings (createSettings)}. Returns {load(), tr(key, params)}: the sidebar's texts
 * mechanism over the `modelLibraryNodes` block. */
export function createNodeTexts({ api, settings }) {
  return createTexts({ api, settings, section: 'modelLibraryNodes', defaults: NODE_TEXT });
}
