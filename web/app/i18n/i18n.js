/**
 * Translations for our pages: looks up dotted keys in the merged messages from
 * `GET /api/lm/i18n`, interpolates `{params}`, and re-translates `data-i18n*` marked nodes.
 */
import { interpolate } from '../lib/format.js';

function lookup(messages, key) {
  let node = messages;
  for (const part of key.split('.')) {
    if (!node || typeof node !== 'object' || !(part in node)) return undefined;
    node = node[part];
  }
  return typeof node === 'string' ? node : undefined;
}

/** An i18n instance; `messages` are already merged over English by the server. */
export function createI18n({ lang = 'en', messages = {} } = {}) {
  let current = { lang, messages };
  const listeners = new Set();

  function t(key, params) {
    const text = lookup(current.messages, key);
    return interpolate(text === undefined ? key : text, params);
  }

  /** Re-translate marked nodes under `root`: data-i18n (text), -title, -aria, -placeholder. */
  function apply(root) {
    for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
    for (const el of root.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
    for (const el of root.querySelectorAll('[data-i18n-aria]')) el.setAttribute('aria-label', t(el.dataset.i18nAria));
    for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  }

  return {
    t,
    apply,
    get lang() { return current.lang; },
    /** Load `lang` through the API client and notify subscribers. */
    async load(api, nextLang) {
      const data = await api.messages(nextLang);
      current = { lang: data.lang || nextLang, messages: data.messages || {} };
      for (const fn of [...listeners]) fn(current.lang);
      return current.lang;
    },
    subscribe(fn) { listeners.add(fn); return () => listeners.delete(fn); },
  };
}
