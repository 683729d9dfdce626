/**
 * The excluded-models view: models hidden from the library (files untouched), each with an
 * "Include again" action (unexclude).
 */
import { h, closestIn, setChildren } from './dom.js';
import { createIcon } from './icon.js';
import { openModal } from './modal.js';
import { displayName } from '../lib/model_text.js';
import { errorText } from '../i18n/error_text.js';

/** deps: {models, t, toasts, refresh()} */
export async function openExcludedDialog(deps) {
  const { models, t } = deps;
  const body = h('div', { class: 'lm-excluded' }, h('p', { class: 'lm-muted', text: t('common.loading') }));
  const modal = openModal({ t, title: t('excluded.title'), content: body, size: 'md', actions: [{ id: 'close', label: t('common.close') }] });

  async function load() {
    try {
      const data = await models.excluded();
      const items = data.items || [];
      if (!items.length) {
        setChildren(body, h('div', { class: 'lm-empty' }, createIcon('check', { size: 28 }), h('p', { text: t('excluded.none') })));
        return;
      }
      setChildren(body,
        h('p', { class: 'lm-modal-text', text: t('excluded.intro') }),
        h('ul', { class: 'lm-dupe-list' }, items.map((item) => h('li', { class: 'lm-dupe-row' },
          h('span', { class: 'lm-dupe-name' }, h('strong', { text: displayName(item) }), h('span', { class: 'lm-muted lm-mono', text: item.relative_path || item.file_path })),
          h('button', { type: 'button', class: 'lm-btn lm-btn--ghost lm-btn--sm', dataset: { include: item.file_path } },
            createIcon('undo', { size: 14 }), h('span', { text: t('excluded.restore') }))))));
    } catch (err) {
      setChildren(body, h('p', { class: 'lm-field-error', text: t('errors.action_failed', { message: errorText(err, t) }) }));
    }
  }

  body.addEventListener('click', async (event) => {
    const button = closestIn(event.target, '[data-include]', body);
    if (!button) return;
    button.disabled = true;
    try {
      await models.unexclude(button.dataset.include);
      deps.refresh();
      await load();
    } catch (err) {
      button.disabled = false;
      deps.toasts.error(t('errors.action_failed', { message: errorText(err, t) }));
    }
  });
  await load();
  return modal;
}
