/**
 * ComfyUI settings of the sidebar: their ids and reading them. The entry declares the
 * settings (names, types, defaults) with these ids; everything else reads values through here.
 * It must not declare or write settings, nor import ComfyUI's scripts: the store comes from
 * compat.js (passed in).
 */

/** ComfyUI setting ids (translated through locales/<lang>/settings.json). */
export const SETTING = Object.freeze({
  strength: 'ModelLibrary.General.DefaultLoraStrength',
  wire: 'ModelLibrary.General.WireAfterSelection',
  blur: 'ModelLibrary.General.BlurMatureContent',
  blurLevel: 'ModelLibrary.General.BlurLevel',
  newTab: 'ModelLibrary.General.OpenInNewTab',
  pageSize: 'ModelLibrary.General.PageSize',
});

/** CivitAI ratings the blur setting offers, mildest first (the panel's NSFW rule knows them). */
export const BLUR_LEVELS = Object.freeze(['PG13', 'R', 'X', 'XXX']);

/** deps: {compat (createCompat)}. Returns {get(id, fallback), panelSettings()}. */
export function createSettings({ compat }) {
  /** A setting's value, or `fallback` while it is unset or the store is not there yet (the
   * store is looked up on every read: it only exists from ComfyUI's setup() on). */
  function get(id, fallback) {
    try {
      const value = compat.settingStore()?.get(id);
      return value === undefined || value === null ? fallback : value;
    } catch {
      return fallback;
    }
  }

  /** The public library settings the shared panel reads (lora strength, preview blur). */
  function panelSettings() {
    const level = String(get(SETTING.blurLevel, 'R'));
    return {
      default_lora_strength: Number(get(SETTING.strength, 1)),
      blur_mature_content: Boolean(get(SETTING.blur, true)),
      mature_blur_level: BLUR_LEVELS.includes(level) ? level : 'R',
    };
  }

  return { get, panelSettings };
}
