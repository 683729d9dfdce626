/**
 * The "Newer versions on CivitAI" section of the details dialog (issue 14): each newer version
 * with its size, base model and date, and "Download update" (beside the old file), "Replace"
 * (download, then the old file goes to the recoverable delete, with Undo) and "Ignore".
 * Reads `GET updates?file_path=`; hidden when the model has no newer version.
 */
import { h, closestIn, setChildren } from './dom.js';
import { createIcon } from './icon.js';
import { formatBytes } from '../lib/format.js';
import { errorText } from '../i18n/error_text.js';

function publishedDate(iso, lang) {
  const when = Date.parse(iso || '');
  return Number.isFinite(when) ? new Date(when).toLocaleDateString(lang, { dateStyle: 'medium' }) : '';
}

/** deps: {models, item, t, lang(), toasts, actions: {undoDelete}, refresh(), onChanged(hasUpdate)} */
export function createUpdateSection(root, deps) {
  const { models, item, t } = deps;
  let groups = [];
  let busy = false;
  root.classList.add('lm-update-section');
  root.dataset.role = 'updates';
  root.hidden = true;

  function row(version, group) {
    const ignored = version.ignored || group.ignored;
    const meta = [
      version.base_model,
      version.size ? formatBytes(version.size, deps.lang()) : '',
      publishedDate(version.published_at, deps.lang()),
    ].filter(Boolean).join(' · ');
    return h('li', { class: `lm-update-row${ignored ? ' lm-update-row--ignored' : ''}`, dataset: { versionId: String(version.version_id) } },
      h('span', { class: 'lm-update-name', text: version.name || String(version.version_id) }),
      version.early_access ? h('span', { class: 'lm-badge lm-badge--warn', text: t('updates.early_access') }) : null,
      h('span', { class: 'lm-update-meta', text: meta }),
      h('span', { class: 'lm-update-actions' },
        h('button', { type: 'button', class: 'lm-btn lm-btn--sm lm-btn--primary', dataset: { update: 'download', versionId: String(version.version_id) }, disabled: busy },
          createIcon('download', { size: 14 }), h('span', { text: t('updates.download') })),
        h('button', { type: 'button', class: 'lm-btn lm-btn--sm', dataset: { update: 'replace', versionId: String(version.version_id) }, disabled: busy, title: t('updates.replace_hint') },
          h('span', { text: t('updates.replace') })),
        group.ignored ? null : h('button', { type: 'button', class: 'lm-btn lm-btn--sm lm-btn--ghost', dataset: { update: version.ignored ? 'unignore' : 'ignore', versionId: String(version.version_id) }, disabled: busy },
          h('span', { text: version.ignored ? t('updates.unignore') : t('updates.ignore') }))));
  }

  function render() {
    const withVersions = groups.filter((g) => g.versions && g.versions.length);
    root.hidden = !withVersions.length;
    if (!withVersions.length) { root.replaceChildren(); return; }
    const group = withVersions[0];
    setChildren(root,
      h('h3', {}, createIcon('download', { size: 15 }), h('span', { text: t('updates.title', { count: group.versions.length }) })),
      h('ul', { class: 'lm-update-list' }, group.versions.map((v) => row(v, group))),
      h('button', { type: 'button', class: 'lm-link-btn', dataset: { update: group.ignored ? 'unignore-model' : 'ignore-model' }, disabled: busy,
        text: group.ignored ? t('updates.unignore_model') : t('updates.ignore_model') }));
  }

  async function load() {
    try {
      const data = await models.updates(item.file_path);
      groups = data.updates || [];
    } catch {
      groups = [];  // a section of extras: the dialog works without it
    }
    render();
  }

  async function act(what, versionId) {
    const group = groups[0] || {};
    busy = true;
    render();
    try {
      if (what === 'download' || what === 'replace') {
        const started = deps.toasts.info(t('updates.downloading'), { timeout: 0 });
        try {
          const data = await models.downloadUpdate(item.file_path, versionId, what === 'replace');
          started.dismiss();
          if (data.replaced && data.batch_id) {
            deps.toasts.show(t('updates.replaced'), { kind: 'success', action: { label: t('common.undo'), run: () => deps.actions.undoDelete(data.batch_id) } });
          } else {
            deps.toasts.success(t('updates.downloaded'));
          }
        } finally {
          started.dismiss();
        }
      } else if (what === 'ignore' || what === 'unignore') {
        await models.ignoreUpdate({ version_id: versionId }, what === 'ignore');
      } else if (what === 'ignore-model' || what === 'unignore-model') {
        await models.ignoreUpdate({ model_id: group.model_id }, what === 'ignore-model');
      }
      busy = false;
      await load();
      if (deps.onChanged) deps.onChanged(groups.some((g) => g.has_update));
      deps.refresh();
    } catch (err) {
      deps.toasts.error(t('errors.action_failed', { message: errorText(err, t) }));
    } finally {
      busy = false;
      render();
    }
  }

  function onClick(event) {
    const button = closestIn(event.target, '[data-update]', root);
    if (!button || button.disabled) return;
    act(button.dataset.update, Number(button.dataset.versionId) || undefined);
  }

  root.addEventListener('click', onClick);
  load();
  return {
    update: load,
    destroy() { root.removeEventListener('click', onClick); root.replaceChildren(); },
  };
}
