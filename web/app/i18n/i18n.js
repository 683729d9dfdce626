/**
 * Translations for our pages: looks up dotted keys in the merged messages from
 * `GET /api/lm/i18n`, interpolates `{params}`, picks plural forms, and re-translates
 * `data-i18n*` marked nodes.
 */
import { interpolate } from '../lib/format.js';

/** CLDR plural categories; a message whose keys are only these (with `other`) is a plural. */
const PLURAL_FORMS = new Set(['zero', 'one', 'two', 'few', 'many', 'other']);

export function isPluralMessage(node) {
  return Boolean(node) && typeof node === 'object' && typeof node.other === 'string'
    && Object.keys(node).every((form) => PLURAL_FORMS.has(form));
}

function lookup(messages, key) {
  let node = messages;
  for (const part of key.split('.')) {
    if (!node || typeof node !== 'object' || !(part in node)) return undefined;
    node = node[part];
  }
  return typeof node === 'string' || isPluralMessage(node) ? node : undefined;
}

/**
 * The form of a plural message for `count` in `lang` ({"one": "{count} model", "other": ...}),
 * falling back to `other` where a locale leaves a category out.
 */
export function pluralForm(message, count, lang) {
  let category = 'other';
  try { category = new Intl.PluralRules(lang).select(count); } catch { /* unknown locale: other */ }
  return typeof message[category] === 'string' ? message[category] : message.other;
}

/** An i18n instance; `messages` are already merged over English by the server. */
export function createI18n({ lang = 'en', messages = {} } = {}) {
  let current = { lang, messages };
  const listeners = new Set();

  /** `params.count` chooses the form of a plural message; a numeric count is shown formatted. */
  function t(key, params) {
    const text = lookup(current.messages, key);
    if (text === undefined) return interpolate(key, params);
    if (typeof text === 'string') return interpolate(text, params);
    const count = Number(params && params.count);
    const shown = params && typeof params.count === 'number' ? { ...params, count: count.toLocaleString(current.lang) } : params;
    return interpolate(pluralForm(text, Number.isFinite(count) ? count : 0, current.lang), shown);
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
