/**
 * The settings dialog: CivitAI API key (write-only), NSFW blur and level, language, default
 * LoRA strength, and (read-only) where the server connects to. Sends only what changed;
 * tells the page when the language changes.
 */
import { h } from './dom.js';
import { openModal } from './modal.js';
import { NSFW_LEVEL_NAMES } from '../lib/nsfw.js';
import { errorText } from '../i18n/error_text.js';

export const LANGUAGE_NAMES = Object.freeze({
  en: 'English', 'zh-CN': '简体中文', ja: '日本語', ko: '한국어', de: 'Deutsch', fr: 'Français', es: 'Español', ru: 'Русский',
});

const LEVEL_KEYS = { PG: 'settings.level_pg', PG13: 'settings.level_pg13', R: 'settings.level_r', X: 'settings.level_x', XXX: 'settings.level_xxx' };

/** deps: {api, t, toasts, settings (store), onLanguage(lang)} */
export async function openSettingsDialog(deps) {
  const { api, t } = deps;
  let current;
  let settingsFile = '';
  let languages = Object.keys(LANGUAGE_NAMES);
  try {
    const [data, langs] = await Promise.all([api.settings(), api.languages().catch(() => null)]);
    current = { ...data.settings, civitai_api_key_set: data.civitai_api_key_set };
    settingsFile = data.settings_file || '';
    if (langs && Array.isArray(langs.languages) && langs.languages.length) languages = langs.languages;
  } catch (err) {
    deps.toasts.error(t('errors.action_failed', { message: errorText(err, t) }));
    return;
  }
  let clearKey = false;
  const keyInput = h('input', {
    class: 'lm-input', type: 'password', autocomplete: 'off', spellcheck: 'false', dataset: { setting: 'civitai_api_key' },
    placeholder: current.civitai_api_key_set ? t('settings.key_set_placeholder') : t('settings.key_placeholder'),
    'aria-describedby': 'lm-key-help',
  });
  const keyStatus = h('span', { class: `lm-badge ${current.civitai_api_key_set ? 'lm-badge--ok' : ''}`, text: current.civitai_api_key_set ? t('settings.key_set') : t('settings.key_not_set') });
  const clearButton = h('button', { type: 'button', class: 'lm-btn lm-btn--ghost lm-btn--sm', hidden: !current.civitai_api_key_set, text: t('settings.key_clear') });
  const blur = h('input', { type: 'checkbox', checked: current.blur_mature_content !== false, dataset: { setting: 'blur_mature_content' } });
  const level = h('select', { class: 'lm-select', dataset: { setting: 'mature_blur_level' }, 'aria-label': t('settings.blur_level') },
    NSFW_LEVEL_NAMES.map((name) => h('option', { value: name, text: t(LEVEL_KEYS[name]), selected: current.mature_blur_level === name })));
  const language = h('select', { class: 'lm-select', dataset: { setting: 'language' }, 'aria-label': t('settings.language') },
    languages.map((code) => h('option', { value: code, text: LANGUAGE_NAMES[code] || code, selected: current.language === code })));
  const strength = h('input', { class: 'lm-input lm-input--num', type: 'number', step: '0.05', min: '-10', max: '10', value: current.default_lora_strength ?? 1, dataset: { setting: 'default_lora_strength' } });
  const error = h('p', { class: 'lm-field-error', role: 'alert' });
  // Where credentials and server-side fetches go is set outside the browser (issue 9).
  const listText = (value) => {
    const items = Array.isArray(value) ? value : (value ? [value] : []);
    return items.length ? items.join(', ') : t('settings.none');
  };
  const readOnly = (label, key) => h('div', { class: 'lm-field' },
    h('span', { class: 'lm-field-label', text: label }),
    h('output', { class: 'lm-readonly', dataset: { setting: key }, text: listText(current[key]) }));

  const content = h('form', { class: 'lm-form lm-settings' },
    h('fieldset', { class: 'lm-fieldset' },
      h('legend', { text: t('settings.civitai') }),
      h('label', { class: 'lm-field' },
        h('span', { class: 'lm-field-label' }, t('settings.api_key'), ' ', keyStatus), keyInput),
      h('div', { class: 'lm-field-row' }, h('p', { id: 'lm-key-help', class: 'lm-field-help', text: t('settings.key_help') }), clearButton)),
    h('fieldset', { class: 'lm-fieldset' },
      h('legend', { text: t('settings.content') }),
      h('label', { class: 'lm-check lm-check--row' }, blur, h('span', { text: t('settings.blur') })),
      h('label', { class: 'lm-field' }, h('span', { class: 'lm-field-label', text: t('settings.blur_level') }), level)),
    h('fieldset', { class: 'lm-fieldset' },
      h('legend', { text: t('settings.general') }),
      h('label', { class: 'lm-field' }, h('span', { class: 'lm-field-label', text: t('settings.language') }), language),
      h('label', { class: 'lm-field' }, h('span', { class: 'lm-field-label', text: t('settings.default_strength') }), strength)),
    h('fieldset', { class: 'lm-fieldset lm-fieldset--readonly' },
      h('legend', { text: t('settings.connections') }),
      readOnly(t('settings.api_base'), 'civitai_api_base'),
      readOnly(t('settings.preview_hosts'), 'preview_url_hosts'),
      readOnly(t('settings.allowed_hosts'), 'allowed_hosts'),
      h('p', { class: 'lm-field-help', text: t('settings.read_only_help', { file: settingsFile }) })),
    error);

  clearButton.addEventListener('click', () => {
    clearKey = true;
    keyInput.value = '';
    keyStatus.textContent = t('settings.key_will_clear');
    clearButton.hidden = true;
  });
  const syncLevel = () => { level.disabled = !blur.checked; };
  blur.addEventListener('change', syncLevel);
  syncLevel();

  function changes() {
    const out = {};
    if (keyInput.value.trim()) out.civitai_api_key = keyInput.value.trim();
    else if (clearKey) out.civitai_api_key = '';
    if (blur.checked !== (current.blur_mature_content !== false)) out.blur_mature_content = blur.checked;
    if (level.value !== current.mature_blur_level) out.mature_blur_level = level.value;
    if (language.value !== current.language) out.language = language.value;
    const s = Number(strength.value);
    if (strength.value !== '' && Number.isFinite(s) && s !== Number(current.default_lora_strength)) out.default_lora_strength = s;
    return out;
  }

  const modal = openModal({
    t, title: t('settings.title'), content, size: 'md',
    actions: [{ id: 'cancel', label: t('common.cancel') }, { id: 'save', label: t('common.save'), kind: 'primary' }],
    async onAction(id) {
      if (id !== 'save') return true;
      const diff = changes();
      if (!Object.keys(diff).length) return true;
      try {
        const data = await api.saveSettings(diff);
        keyInput.value = '';
        deps.settings.set({ ...(data.settings || {}), civitai_api_key_set: data.civitai_api_key_set });
        deps.toasts.success(t('toast.settings_saved'));
        if (diff.language) deps.onLanguage(diff.language);
        return true;
      } catch (err) {
        error.textContent = errorText(err, t);
        return false;
      }
    },
  });
  content.addEventListener('submit', (event) => { event.preventDefault(); modal.button('save').click(); });
  keyInput.focus();
  return modal;
}
