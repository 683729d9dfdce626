/**
 * The duplicates view: groups of models with the same SHA256, re-verification by hashing,
 * and deletion of the extras (the first of each group is kept by default), with Undo.
 */
import { h, closestIn, setChildren } from './dom.js';
import { createIcon } from './icon.js';
import { openModal } from './modal.js';
import { formatBytes, formatDate, shortHash } from '../lib/format.js';
import { displayName } from '../lib/model_text.js';
import { errorText } from '../i18n/error_text.js';

/** deps: {models, t, lang(), toasts, actions} */
export async function openDuplicatesDialog(deps) {
  const { models, t } = deps;
  const body = h('div', { class: 'lm-dupes' }, h('p', { class: 'lm-muted', text: t('common.loading') }));
  const summary = h('span', { class: 'lm-dupes-summary' });
  let groups = [];
  const marked = new Set();

  const modal = openModal({
    t, title: t('duplicates.title'), content: body, size: 'lg',
    actions: [{ id: 'close', label: t('common.close') }, { id: 'delete', label: t('duplicates.delete_selected'), kind: 'danger', disabled: true }],
    async onAction(id) {
      if (id !== 'delete') return true;
      const items = groups.flatMap((g) => g.models).filter((m) => marked.has(m.file_path));
      if (!items.length) return false;
      if (await deps.actions.remove(items, { confirm: true })) await load();
      return false;
    },
  });
  modal.footer.prepend(summary);

  function updateSummary() {
    summary.textContent = t('duplicates.selected', { count: marked.size });
    const button = modal.button('delete');
    if (button) button.disabled = marked.size === 0;
  }

  function render() {
    if (!groups.length) {
      setChildren(body, h('div', { class: 'lm-empty' }, createIcon('check', { size: 28 }), h('p', { text: t('duplicates.none') })));
      updateSummary();
      return;
    }
    const lang = deps.lang();
    setChildren(body, 
      h('p', { class: 'lm-modal-text', text: t('duplicates.intro', { count: groups.length }) }),
      ...groups.map((group, gi) => h('section', { class: 'lm-dupe-group', dataset: { group: String(gi) } },
        h('header', { class: 'lm-dupe-head' },
          h('span', { class: 'lm-mono', text: shortHash(group.hash, 16), title: group.hash }),
          h('span', { class: 'lm-badge', text: t('duplicates.copies', { count: group.models.length }) }),
          group.verdict ? h('span', { class: `lm-badge ${group.verdict === 'identical' ? 'lm-badge--ok' : 'lm-badge--warn'}`, text: group.verdict === 'identical' ? t('duplicates.verified') : t('duplicates.differ') }) : null,
          h('span', { class: 'lm-card-spacer' }),
          h('button', { type: 'button', class: 'lm-btn lm-btn--ghost lm-btn--xs', dataset: { verify: String(gi) } }, createIcon('refresh', { size: 13 }), h('span', { text: t('duplicates.verify') }))),
        h('ul', { class: 'lm-dupe-list' }, group.models.map((m) => h('li', { class: 'lm-dupe-row' },
          h('label', { class: 'lm-check' },
            h('input', { type: 'checkbox', checked: marked.has(m.file_path), dataset: { mark: m.file_path }, 'aria-label': t('duplicates.mark', { name: displayName(m) }) }),
            m.preview_url && m.preview_type !== 'video' ? h('img', { class: 'lm-dupe-thumb', src: m.preview_url, alt: '', loading: 'lazy' }) : h('span', { class: 'lm-dupe-thumb' }, createIcon('image', { size: 16 })),
            h('span', { class: 'lm-dupe-name' }, h('strong', { text: displayName(m) }), h('span', { class: 'lm-muted lm-mono', text: m.relative_path || m.file_path }))),
          h('span', { class: 'lm-muted', text: `${formatBytes(m.size, lang)} · ${formatDate(m.modified, lang)}` })))))));
    updateSummary();
  }

  async function load() {
    try {
      const data = await models.findDuplicates();
      groups = (data.groups || []).filter((g) => g.models && g.models.length > 1);
      marked.clear();
      for (const g of groups) g.models.slice(1).forEach((m) => marked.add(m.file_path));
      render();
    } catch (err) {
      setChildren(body, h('p', { class: 'lm-field-error', text: t('errors.action_failed', { message: errorText(err, t) }) }));
    }
  }

  async function verify(gi, button) {
    const group = groups[gi];
    button.disabled = true;
    try {
      const data = await models.verifyDuplicates(group.models.map((m) => m.file_path));
      // `groups` partitions the checked files by their real hash: one group holding all = identical.
      const groups = Array.isArray(data.groups) ? data.groups : [];
      const identical = groups.length === 1 && (groups[0].file_paths || []).length === group.models.length;
      if (data.fixed) deps.toasts.info(t('duplicates.fixed', { count: data.fixed }));
      group.verdict = identical ? 'identical' : 'differ';
      render();
    } catch (err) {
      deps.toasts.error(t('errors.action_failed', { message: errorText(err, t) }));
      button.disabled = false;
    }
  }

  body.addEventListener('click', (event) => {
    const button = closestIn(event.target, '[data-verify]', body);
    if (button) verify(Number(button.dataset.verify), button);
  });
  body.addEventListener('change', (event) => {
    const box = event.target;
    if (!box.dataset || !box.dataset.mark) return;
    if (box.checked) marked.add(box.dataset.mark); else marked.delete(box.dataset.mark);
    updateSummary();
  });
  await load();
  return modal;
}
