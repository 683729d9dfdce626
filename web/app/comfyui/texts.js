/**
 * Texts of the ComfyUI entry and sidebar chrome (tab title, hints, toasts): English defaults
 * and `tr(key, params)` in ComfyUI's current language. The translations come from ComfyUI's own
 * custom-node i18n (`GET /i18n` merges locales/<lang>/main.json), key `modelLibrary.<key>`.
 * The shared panel's texts are not here: they come from our /api/lm/i18n (web/app/i18n).
 * Must not import ComfyUI's scripts: `api` and the settings come in as deps.
 */

/** English texts; locales/<lang>/main.json `modelLibrary` overrides them per language. */
export const DEFAULT_TEXT = Object.freeze({
  // not "Model Library": ComfyUI's own tab has that name
  title: 'LoRAs & Models',
  tooltip: 'LoRAs & Models: your LoRAs, checkpoints and embeddings with previews (Model Library)',
  label: 'LoRAs',
  openFullLibrary: 'Open full library',
  typesLabel: 'Model type',
  added: 'Added {name} to the workflow.',
  applied: 'Set {name} on the selected node.',
  addedToList: 'Added {name} to “{node}”.',
  inList: '{name} is already in “{node}”: switched on.',
  inserted: 'Inserted {name}.',
  noTarget: 'Select a loader node or a text field first.',
  hintNew: 'Add creates a new node · drag a card onto the canvas or a prompt',
  hintAfter: 'Add wires the new node after “{node}”',
  hintApply: 'Add: chain after or apply to “{node}”',
  hintApplyOnly: 'Add: apply to “{node}” or create a new node',
  hintInsert: 'Add inserts at the cursor in “{node}”',
  hintInsertNone: 'Click into a prompt box, then add an embedding',
  choose: 'Add “{name}”',
  addAfter: 'Add a new node after “{node}”',
  addNew: 'Add as a new node',
  applyTo: 'Apply to “{node}”',
  notListed: '{name} is not in ComfyUI\'s list yet: refresh node definitions (R) if the node shows it as missing.',
  nodeMissing: 'ComfyUI has no “{type}” node.',
  fetchDone: 'CivitAI: {updated} of {total} models updated.',
  fetchFailed: 'CivitAI refresh stopped: {error}',
  downloadDone: 'Downloaded {name}.',
  downloadFailed: 'Download failed: {name}',
  organizeDone: 'Auto-organize finished.',
  close: 'Close sidebar',
});

/** ComfyUI's locale code → ours (ComfyUI says 'zh', our locales folder is 'zh-CN'). */
export function libraryLang(comfyLocale) {
  const code = String(comfyLocale || 'en');
  if (code === 'zh' || code.startsWith('zh-')) return 'zh-CN';
  return code.split('-')[0] || 'en';
}

// not lib/format.js' interpolate: that one prints an undefined parameter as "undefined",
// these texts keep the placeholder visible instead
function interpolate(text, params) {
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (m, key) => (params[key] === undefined ? m : String(params[key])));
}

/**
 * deps: {api (ComfyUI's), settings (createSettings)}; `section` and `defaults` name the block of
 * main.json and its English texts (the sidebar's by default, the nodes pass theirs).
 * Returns {load(), tr(key, params)}.
 */
export function createTexts({ api, settings, section = 'modelLibrary', defaults = DEFAULT_TEXT }) {
  let messages = {};
  let loading = null;

  /** Fetch our main.json texts of every language once; a failure leaves the English defaults. */
  function load() {
    if (!loading) {
      loading = api.fetchApi('/i18n')
        .then((res) => (res.ok ? res.json() : {}))
        .then((data) => { messages = data && typeof data === 'object' ? data : {}; })
        .catch(() => { messages = {}; });
    }
    return loading;
  }

  /** Translate one of our sidebar texts in ComfyUI's current language (read on every call:
   * the user may switch languages without a reload). */
  function tr(key, params) {
    const locale = String(settings.get('Comfy.Locale', 'en'));
    for (const code of [locale, libraryLang(locale), 'en']) {
      const text = messages[code]?.[section]?.[key];
      if (typeof text === 'string') return interpolate(text, params);
    }
    return interpolate(defaults[key] ?? key, params);
  }

  return { load, tr };
}
