/**
 * The details dialog of one model: large preview, file facts, trigger words (click to copy),
 * tags editor, notes, usage tips, sanitised CivitAI description and versions with
 * "in library" marks. Saves edits with save-metadata.
 */
import { h, closestIn, setChildren } from './dom.js';
import { createIcon } from './icon.js';
import { openModal } from './modal.js';
import { copyText } from './model_actions.js';
import { sanitizeHtml, safeHttpUrl } from '../lib/html_sanitizer.js';
import { formatBytes, formatDate, shortHash } from '../lib/format.js';
import { displayName, triggerWords, parseUsageTips, serializeUsageTips, normaliseTags, civitaiModelUrl } from '../lib/model_text.js';
import { shouldBlur } from '../lib/nsfw.js';
import { errorText } from '../i18n/error_text.js';
import { createUpdateSection } from './update_section.js';

function fact(label, value, { copy = false, mono = false } = {}) {
  if (value === undefined || value === null || value === '') return null;
  return [
    h('dt', { text: label }),
    h('dd', { class: mono ? 'lm-mono' : null },
      h('span', { class: 'lm-fact-value', text: String(value), title: String(value) }),
      copy ? h('button', { type: 'button', class: 'lm-icon-btn lm-icon-btn--xs', dataset: { copy: String(value) }, 'aria-label': `${label}: copy` }, createIcon('copy', { size: 13 })) : null),
  ];
}

/** Open the dialog for `item`; deps: {models, t, lang(), settings, toasts, actions, patchItem, refresh}. */
export function openDetailsDialog(item, deps) {
  const { models, t } = deps;
  const lang = deps.lang();
  let tags = [...(item.tags || [])];
  const tips = parseUsageTips(item.usage_tips);
  let revealed = false;

  const preview = h('div', { class: 'lm-details-preview' });
  function renderPreview(current) {
    const blur = shouldBlur(current.preview_nsfw_level, deps.settings.get()) && !revealed;
    preview.classList.toggle('lm-blurred', blur);
    let media;
    if (current.preview_url && current.preview_type === 'video') {
      media = h('video', { src: current.preview_url, controls: true, muted: true, loop: true, playsinline: true, autoplay: true });
    } else if (current.preview_url) {
      media = h('img', { src: current.preview_url, alt: t('details.preview_alt', { name: displayName(current) }) });
    } else {
      media = h('div', { class: 'lm-details-placeholder' }, createIcon('image', { size: 48 }), h('span', { text: t('details.no_preview') }));
    }
    setChildren(preview, media,
      blur ? h('button', { type: 'button', class: 'lm-btn lm-btn--ghost lm-reveal', dataset: { details: 'reveal' }, text: t('details.reveal') }) : null,
      h('button', { type: 'button', class: 'lm-btn lm-btn--ghost lm-btn--sm lm-details-replace', dataset: { details: 'replace-preview' } },
        createIcon('upload', { size: 14 }), h('span', { text: t('card.replace_preview') })));
  }
  renderPreview(item);

  const nameInput = h('input', { class: 'lm-input', type: 'text', value: item.model_name || item.file_name, dataset: { role: 'model-name' }, 'aria-label': t('details.name') });
  const baseList = h('datalist', { id: `lm-base-models-${Date.now()}` });
  const baseInput = h('input', {
    class: 'lm-input', type: 'text', value: item.base_model || '', placeholder: t('details.unknown'), list: baseList.id,
    dataset: { role: 'base-model' }, 'aria-label': t('details.base_model'), spellcheck: 'false',
  });
  models.baseModels().then((data) => {
    baseList.replaceChildren(...(data.base_models || []).map((b) => h('option', { value: b.name })));
  }).catch(() => { /* suggestions only */ });
  const tagChips = h('div', { class: 'lm-chips lm-tag-editor-chips', role: 'list', 'aria-label': t('details.tags') });
  const tagInput = h('input', { class: 'lm-input lm-tag-input', type: 'text', placeholder: t('details.add_tag'), 'aria-label': t('details.add_tag'), dataset: { role: 'tag-input' }, spellcheck: 'false' });
  const notes = h('textarea', { class: 'lm-input lm-notes', rows: '4', placeholder: t('details.notes_placeholder'), 'aria-label': t('details.notes'), dataset: { role: 'notes' } });
  notes.value = item.notes || '';
  const strength = h('input', { class: 'lm-input lm-input--num', type: 'number', step: '0.05', min: '-10', max: '10', value: tips.strength ?? '', placeholder: String(deps.settings.get().default_lora_strength ?? 1), 'aria-label': t('details.strength'), dataset: { role: 'strength' } });
  const clipStrength = h('input', { class: 'lm-input lm-input--num', type: 'number', step: '0.05', min: '-10', max: '10', value: tips.clip_strength ?? '', 'aria-label': t('details.clip_strength'), dataset: { role: 'clip-strength' } });

  function renderTags() {
    setChildren(tagChips, ...tags.map((tag) => h('span', { class: 'lm-chip lm-chip--tag', role: 'listitem' },
      h('span', { class: 'lm-chip-label', text: tag }),
      h('button', { type: 'button', class: 'lm-chip-remove', dataset: { removeTag: tag }, 'aria-label': t('details.remove_tag', { tag }) }, createIcon('close', { size: 12 })))));
  }
  renderTags();

  function addTagsFromInput() {
    const added = normaliseTags(tagInput.value);
    if (!added.length) return false;
    for (const tag of added) if (!tags.includes(tag)) tags.push(tag);
    tagInput.value = '';
    renderTags();
    return true;
  }

  const words = triggerWords(item);
  const wordChips = words.length
    ? h('div', { class: 'lm-chips' }, words.map((w) => h('button', { type: 'button', class: 'lm-chip lm-chip--word', dataset: { copy: w }, title: t('details.click_to_copy') },
      createIcon('copy', { size: 12 }), h('span', { class: 'lm-chip-label', text: w }))))
    : h('p', { class: 'lm-muted', text: t('details.no_trigger_words') });

  const civitai = item.civitai || {};
  const facts = h('dl', { class: 'lm-facts' },
    fact(t('details.file'), `${item.file_name}${item.file_path && item.file_path.includes('.') ? item.file_path.slice(item.file_path.lastIndexOf('.')) : ''}`),
    fact(t('details.path'), item.file_path, { copy: true, mono: true }),
    fact(t('details.size'), formatBytes(item.size, lang)),
    fact(t('details.modified'), formatDate(item.modified, lang)),
    fact(t('details.usage'), item.usage_count && item.last_used
      ? t('details.usage_value', { count: item.usage_count, date: formatDate(item.last_used, lang) }) : t('details.never_used')),
    fact(t('details.sub_type'), item.sub_type),
    fact(t('details.sha256'), item.sha256 || (item.hash_status === 'failed' ? t('details.hash_failed') : t('details.hash_pending')), { copy: Boolean(item.sha256), mono: true }),
    fact(t('details.autov2'), item.autov2 ? shortHash(item.autov2) : '', { mono: true }),
    fact(t('details.creator'), item.creator),
    fact(t('details.civitai'), civitai.model_name ? `${civitai.model_name}${civitai.name ? ` · ${civitai.name}` : ''}` : ''),
    item.metadata_status && item.metadata_status !== 'ok' && item.metadata_status !== 'missing' ? fact(t('details.metadata_status'), item.metadata_status) : null);

  // newer versions on CivitAI (issue 14): filled by its own module, hidden when there are none
  const updateHost = h('section', { class: 'lm-details-section', hidden: true });
  if (civitai.modelId) createUpdateSection(updateHost, { ...deps, item });
  const overview = h('div', { class: 'lm-details-overview' },
    updateHost,
    h('div', { class: 'lm-inline-fields' },
      h('label', { class: 'lm-field' }, h('span', { class: 'lm-field-label', text: t('details.name') }), nameInput),
      h('label', { class: 'lm-field' }, h('span', { class: 'lm-field-label', text: t('details.base_model') }), baseInput, baseList)),
    facts,
    h('section', { class: 'lm-details-section' }, h('h3', { text: t('details.trigger_words') }), wordChips),
    h('section', { class: 'lm-details-section' }, h('h3', { text: t('details.tags') }), h('div', { class: 'lm-tag-editor' }, tagChips, tagInput)),
    item.model_type === 'lora' ? h('section', { class: 'lm-details-section' }, h('h3', { text: t('details.usage_tips') }),
      h('div', { class: 'lm-inline-fields' },
        h('label', { class: 'lm-field lm-field--inline' }, h('span', { class: 'lm-field-label', text: t('details.strength') }), strength),
        h('label', { class: 'lm-field lm-field--inline' }, h('span', { class: 'lm-field-label', text: t('details.clip_strength') }), clipStrength))) : null,
    h('section', { class: 'lm-details-section' }, h('h3', { text: t('details.notes') }), notes));

  const description = h('div', { class: 'lm-details-description lm-prose' }, h('p', { class: 'lm-muted', text: t('common.loading') }));
  const versions = h('div', { class: 'lm-details-versions' }, h('p', { class: 'lm-muted', text: t('common.loading') }));
  const panels = { overview, description, versions };
  const tabs = h('div', { class: 'lm-tabs', role: 'tablist', 'aria-label': t('details.sections') },
    [['overview', 'details.tab_overview'], ['description', 'details.tab_description'], ['versions', 'details.tab_versions']].map(([id, key], i) => h('button', {
      type: 'button', role: 'tab', class: 'lm-tab', id: `lm-tab-${id}`, 'aria-selected': i === 0 ? 'true' : 'false', 'aria-controls': `lm-panel-${id}`,
      tabindex: i === 0 ? '0' : '-1', dataset: { tab: id }, text: t(key),
    })));
  for (const [id, panel] of Object.entries(panels)) {
    panel.id = `lm-panel-${id}`;
    panel.setAttribute('role', 'tabpanel');
    panel.setAttribute('aria-labelledby', `lm-tab-${id}`);
    panel.hidden = id !== 'overview';
  }

  const quick = h('div', { class: 'lm-details-quick' },
    h('button', { type: 'button', class: 'lm-btn lm-btn--ghost lm-btn--sm', dataset: { details: 'copy-syntax' } }, createIcon('copy', { size: 14 }), h('span', { text: t('card.copy_syntax') })),
    h('button', { type: 'button', class: 'lm-btn lm-btn--ghost lm-btn--sm', dataset: { details: 'fetch-civitai' } }, createIcon('refresh', { size: 14 }), h('span', { text: t('card.fetch_civitai') })),
    civitaiModelUrl(item) ? h('a', { class: 'lm-btn lm-btn--ghost lm-btn--sm', href: civitaiModelUrl(item), target: '_blank', rel: 'noopener noreferrer' }, createIcon('external', { size: 14 }), h('span', { text: t('card.open_civitai') })) : null);

  const content = h('div', { class: 'lm-details' },
    h('div', { class: 'lm-details-side' }, preview, quick),
    h('div', { class: 'lm-details-main' }, tabs, overview, description, versions));

  let loaded = { description: false, versions: false };

  async function loadDescription() {
    loaded.description = true;
    try {
      const data = await models.description(item.file_path);
      const html = data.description || '';
      setChildren(description, html ? sanitizeHtml(html) : h('p', { class: 'lm-muted', text: t('details.no_description') }));
    } catch (err) {
      setChildren(description, h('p', { class: 'lm-muted', text: err.isNotFound ? t('details.no_description') : t('errors.action_failed', { message: errorText(err, t) }) }));
    }
  }

  async function loadVersions() {
    loaded.versions = true;
    if (!civitai.modelId) { setChildren(versions, h('p', { class: 'lm-muted', text: t('details.no_civitai') })); return; }
    try {
      const data = await models.civitaiVersions(civitai.modelId);
      const list = data.versions || [];
      if (!list.length) { setChildren(versions, h('p', { class: 'lm-muted', text: t('details.no_versions') })); return; }
      setChildren(versions, h('ul', { class: 'lm-version-list' }, list.map((v) => {
        const current = v.id === civitai.id;
        const url = safeHttpUrl(`https://civitai.com/models/${encodeURIComponent(civitai.modelId)}?modelVersionId=${encodeURIComponent(v.id)}`);
        return h('li', { class: `lm-version${v.existsLocally ? ' lm-version--local' : ''}` },
          h('div', { class: 'lm-version-main' },
            h('span', { class: 'lm-version-name', text: v.name || String(v.id) }),
            v.baseModel ? h('span', { class: 'lm-badge', text: v.baseModel }) : null,
            current ? h('span', { class: 'lm-badge lm-badge--accent', text: t('details.this_version') }) : null),
          h('div', { class: 'lm-version-side' },
            v.existsLocally ? h('span', { class: 'lm-in-library', title: v.localPath || '' }, createIcon('check', { size: 14 }), h('span', { text: t('details.in_library') })) : null,
            url ? h('a', { href: url, target: '_blank', rel: 'noopener noreferrer', class: 'lm-icon-btn', 'aria-label': t('card.open_civitai') }, createIcon('external', { size: 14 })) : null));
      })));
    } catch (err) {
      setChildren(versions, h('p', { class: 'lm-muted', text: t('errors.action_failed', { message: errorText(err, t) }) }));
    }
  }

  function selectTab(id) {
    for (const tab of tabs.querySelectorAll('[role="tab"]')) {
      const on = tab.dataset.tab === id;
      tab.setAttribute('aria-selected', String(on));
      tab.tabIndex = on ? 0 : -1;
    }
    for (const [key, panel] of Object.entries(panels)) panel.hidden = key !== id;
    if (id === 'description' && !loaded.description) loadDescription();
    if (id === 'versions' && !loaded.versions) loadVersions();
  }

  function changes() {
    const out = {};
    const name = nameInput.value.trim();
    if (name && name !== (item.model_name || item.file_name)) out.model_name = name;
    const base = baseInput.value.trim();
    if (base !== (item.base_model || '')) out.base_model = base;
    const before = [...(item.tags || [])];
    if (tags.length !== before.length || tags.some((tag, i) => tag !== before[i])) out.tags = tags;
    if (notes.value !== (item.notes || '')) out.notes = notes.value;
    if (item.model_type === 'lora') {
      const next = { ...tips, strength: strength.value === '' ? undefined : Number(strength.value), clip_strength: clipStrength.value === '' ? undefined : Number(clipStrength.value) };
      const serialized = serializeUsageTips(next);
      if (serialized !== serializeUsageTips(tips)) out.usage_tips = serialized;
    }
    return out;
  }

  const modal = openModal({
    t, title: displayName(item), content, size: 'lg', className: 'lm-details-modal',
    actions: [{ id: 'cancel', label: t('common.close') }, { id: 'save', label: t('common.save'), kind: 'primary' }],
    async onAction(id) {
      if (id !== 'save') return true;
      addTagsFromInput();
      const diff = changes();
      if (!Object.keys(diff).length) return true;
      try {
        const data = await models.saveMetadata(item.file_path, diff);
        deps.patchItem(item.file_path, data.item && data.item.file_path === item.file_path ? data.item : diff);
        deps.toasts.success(t('toast.saved'));
        deps.refresh();
        return true;
      } catch (err) {
        deps.toasts.error(t('errors.save_failed', { message: errorText(err, t) }));
        return false;
      }
    },
  });

  async function onClick(event) {
    const copy = closestIn(event.target, '[data-copy]', content);
    if (copy) {
      if (await copyText(copy.dataset.copy)) deps.toasts.success(t('toast.copied', { text: copy.dataset.copy }));
      return;
    }
    const remove = closestIn(event.target, '[data-remove-tag]', content);
    if (remove) { tags = tags.filter((tag) => tag !== remove.dataset.removeTag); renderTags(); tagInput.focus(); return; }
    const tab = closestIn(event.target, '[data-tab]', content);
    if (tab) { selectTab(tab.dataset.tab); return; }
    const action = closestIn(event.target, '[data-details]', content);
    if (!action) return;
    const what = action.dataset.details;
    if (what === 'reveal') { revealed = true; renderPreview(item); }
    else if (what === 'replace-preview') deps.actions.choosePreview(item, (updated) => renderPreview(updated));
    else if (what === 'copy-syntax') deps.actions.copySyntax(item);
    else if (what === 'fetch-civitai') {
      const data = await deps.actions.fetchCivitai(item);
      // Show what CivitAI brought, unless the user has unsaved edits in this dialog.
      if (data && data.metadata && data.metadata.file_path === item.file_path && !Object.keys(changes()).length) {
        modal.close(null);
        openDetailsDialog(data.metadata, deps);
      }
    }
  }

  function onKeyDown(event) {
    if (event.target === tagInput && (event.key === 'Enter' || event.key === ',')) {
      event.preventDefault();
      addTagsFromInput();
    } else if (event.target === tagInput && event.key === 'Backspace' && !tagInput.value && tags.length) {
      tags = tags.slice(0, -1);
      renderTags();
    } else if (event.target.getAttribute && event.target.getAttribute('role') === 'tab' && (event.key === 'ArrowRight' || event.key === 'ArrowLeft')) {
      const list = [...tabs.querySelectorAll('[role="tab"]')];
      const i = list.indexOf(event.target);
      const next = list[(i + (event.key === 'ArrowRight' ? 1 : -1) + list.length) % list.length];
      selectTab(next.dataset.tab);
      next.focus();
    }
  }

  content.addEventListener('click', onClick);
  content.addEventListener('keydown', onKeyDown);
  return modal;
}
