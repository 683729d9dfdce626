/**
 * The settings dialog: CivitAI API key and HuggingFace token (both write-only: the server only
 * says whether one is set), NSFW blur and level, language, default
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
    current = { ...data.settings, civitai_api_key_set: data.civitai_api_key_set ?? data.settings?.civitai_api_key_set };
    settingsFile = data.settings_file || '';
    if (langs && Array.isArray(langs.languages) && langs.languages.length) languages = langs.languages;
  } catch (err) {
    deps.toasts.error(t('errors.action_failed', { message: errorText(err, t) }));
    return;
  }
  // A write-only secret: the input is never filled, a badge says whether one is saved,
  // "remove" sends an empty value, an empty input leaves it as it is.
  const secretField = ({ setting, isSet, placeholder, setPlaceholder, help, helpId, clearLabel, label }) => {
    const field = { setting, clear: false };
    field.input = h('input', {
      class: 'lm-input', type: 'password', autocomplete: 'off', spellcheck: 'false', dataset: { setting },
      placeholder: isSet ? setPlaceholder : placeholder, 'aria-describedby': helpId,
    });
    field.status = h('span', { class: `lm-badge ${isSet ? 'lm-badge--ok' : ''}`, dataset: { secretStatus: setting }, text: isSet ? t('settings.key_set') : t('settings.key_not_set') });
    field.clearButton = h('button', { type: 'button', class: 'lm-btn lm-btn--ghost lm-btn--sm', hidden: !isSet, dataset: { secretClear: setting }, text: clearLabel });
    field.clearButton.addEventListener('click', () => {
      field.clear = true;
      field.input.value = '';
      field.status.textContent = t('settings.key_will_clear');
      field.clearButton.hidden = true;
    });
    field.nodes = [
      h('label', { class: 'lm-field' }, h('span', { class: 'lm-field-label' }, label, ' ', field.status), field.input),
      h('div', { class: 'lm-field-row' }, h('p', { id: helpId, class: 'lm-field-help', text: help }), field.clearButton),
    ];
    field.change = (out) => {
      if (field.input.value.trim()) out[setting] = field.input.value.trim();
      else if (field.clear) out[setting] = '';
    };
    return field;
  };
  const civitaiKey = secretField({
    setting: 'civitai_api_key', isSet: Boolean(current.civitai_api_key_set), label: t('settings.api_key'),
    placeholder: t('settings.key_placeholder'), setPlaceholder: t('settings.key_set_placeholder'),
    help: t('settings.key_help'), helpId: 'lm-key-help', clearLabel: t('settings.key_clear'),
  });
  const hfToken = secretField({
    setting: 'huggingface_token', isSet: Boolean(current.huggingface_token_set), label: t('settings.hf_token'),
    placeholder: t('settings.hf_token_placeholder'), setPlaceholder: t('settings.hf_token_set_placeholder'),
    help: t('settings.hf_token_help'), helpId: 'lm-hf-token-help', clearLabel: t('settings.hf_token_clear'),
  });
  const keyInput = civitaiKey.input;
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
      ...civitaiKey.nodes),
    h('fieldset', { class: 'lm-fieldset' },
      h('legend', { text: t('settings.huggingface') }),
      ...hfToken.nodes),
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

  const syncLevel = () => { level.disabled = !blur.checked; };
  blur.addEventListener('change', syncLevel);
  syncLevel();

  function changes() {
    const out = {};
    civitaiKey.change(out);
    hfToken.change(out);
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
        hfToken.input.value = '';
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
