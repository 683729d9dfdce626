/**
 * The Disk view (issue 14): what the models take on disk per type and folder, the largest
 * models, copies of one file across folders and types, models never used; each with a
 * delete through the recoverable delete (undo in the toast). Reads `GET /api/lm/disk`.
 * Built from the existing classes (dupe groups, rows, badges, buttons), so it follows the
 * page's palette (ComfyUI's inside ComfyUI).
 */
import { h, setChildren } from './dom.js';
import { createIcon } from './icon.js';
import { confirmDialog } from './modal.js';
import { formatBytes, formatCount } from '../lib/format.js';
import { errorText } from '../i18n/error_text.js';

const LIMIT = 25;

/** `types.<value>` labels; the report names each type by value and prefix. */
function typeLabel(t, value) { return t(`types.${value}`); }

export function createDiskView(root, { api, t, lang, toasts, initialType = '' }) {
  let type = initialType;
  let folder = null;
  let allTypes = [];
  let destroyed = false;
  // its own scroll area in the page's column layout (the grid's place)
  const el = h('section', {
    class: 'lm-disk', dataset: { view: 'disk' }, 'aria-labelledby': 'lm-disk-title',
    style: { flex: '1', minHeight: '0', overflowY: 'auto', padding: '14px 18px', display: 'flex', flexDirection: 'column', gap: '10px' },
  });
  const body = h('div', { class: 'lm-dupes' }, h('p', { class: 'lm-muted', text: t('common.loading') }));
  const typeSelect = h('select', { class: 'lm-select', dataset: { disk: 'type' }, 'aria-label': t('disk.type') });
  el.append(
    h('header', { class: 'lm-dupe-head' },
      h('h1', { id: 'lm-disk-title', class: 'lm-filter-heading', text: t('disk.title') }),
      h('span', { class: 'lm-card-spacer' }),
      typeSelect),
    h('p', { class: 'lm-modal-text lm-muted', text: t('disk.intro') }),
    body);
  root.append(el);

  const size = (bytes) => formatBytes(bytes, lang());
  const count = (n) => formatCount(n, lang());

  function fillTypes() {
    setChildren(typeSelect,
      h('option', { value: '', text: t('disk.all_types') }),
      ...allTypes.map((x) => h('option', { value: x.model_type, text: typeLabel(t, x.model_type), selected: x.model_type === type })));
    typeSelect.value = type;
  }

  function modelRow(m, { showType = true } = {}) {
    return h('li', { class: 'lm-dupe-row', dataset: { path: m.file_path } },
      h('span', { class: 'lm-dupe-name' },
        h('strong', { text: m.model_name || m.file_name }),
        h('span', { class: 'lm-muted lm-mono', text: m.file_path })),
      showType ? h('span', { class: 'lm-badge', text: typeLabel(t, m.model_type) }) : null,
      h('span', { class: 'lm-muted', text: size(m.size) }),
      h('button', {
        type: 'button', class: 'lm-btn lm-btn--ghost lm-btn--xs', dataset: { delete: m.file_path, prefix: m.prefix },
        'aria-label': `${t('disk.delete')} ${m.file_name}`,
      }, createIcon('trash', { size: 13 }), h('span', { text: t('disk.delete') })));
  }

  function section(key, title, hint, ...children) {
    return h('section', { class: 'lm-dupe-group', dataset: { section: key } },
      h('header', { class: 'lm-dupe-head' }, h('strong', { text: title }), hint ? h('span', { class: 'lm-muted', text: hint }) : null),
      ...children);
  }

  function list(items, opts) {
    return items.length ? h('ul', { class: 'lm-dupe-list' }, items.map((m) => modelRow(m, opts)))
      : h('p', { class: 'lm-filter-empty lm-dupe-row', text: t('disk.empty') });
  }

  function render(report) {
    const types = report.types || [];
    const totals = section('totals', t('disk.total'), `${size(report.total.size)} · ${count(report.total.count)} ${t('disk.count')}`,
      h('ul', { class: 'lm-dupe-list' }, types.flatMap((x) => [
        h('li', { class: 'lm-dupe-row', dataset: { type: x.model_type } },
          h('strong', { text: typeLabel(t, x.model_type) }),
          h('span', { class: 'lm-muted', text: `${count(x.count)} ${t('disk.count')}` }),
          h('span', { dataset: { size: x.model_type }, text: size(x.size) })),
        ...x.folders.map((f) => h('li', { class: 'lm-dupe-row', dataset: { folder: f.path } },
          h('button', {
            type: 'button', class: 'lm-btn lm-btn--ghost lm-btn--xs', dataset: { folderOf: x.model_type, folderName: f.folder },
            title: f.path,
          }, createIcon('folder', { size: 13 }), h('span', { class: 'lm-mono', text: f.folder || t('disk.root') })),
          h('span', { class: 'lm-muted', text: `${count(f.count)} ${t('disk.count')}` }),
          h('span', { class: 'lm-muted', text: size(f.size) }))),
      ])));
    const dupes = section('duplicates', t('disk.duplicates'),
      `${t('disk.duplicates_hint')} ${t('disk.reclaimable', { size: size(report.duplicate_wasted || 0) })}`,
      ...(report.duplicates.length ? report.duplicates.map((d) => h('ul', { class: 'lm-dupe-list', dataset: { sha: d.sha256 } },
        d.models.map((m) => modelRow(m)))) : [h('p', { class: 'lm-filter-empty lm-dupe-row', text: t('disk.empty') })]));
    const never = section('never-used', `${t('disk.never_used')} · ${count(report.never_used.count)} · ${size(report.never_used.size)}`,
      t('disk.never_used_hint'), list(report.never_used.items));
    setChildren(body,
      folder !== null ? h('p', { class: 'lm-dupe-row' },
        h('span', { class: 'lm-mono', text: `${t('disk.folder')}: ${folder || t('disk.root')}` }),
        h('button', { type: 'button', class: 'lm-btn lm-btn--ghost lm-btn--xs', dataset: { disk: 'all-folders' }, text: t('disk.all_folders') })) : null,
      report.unhashed ? h('p', { class: 'lm-muted', text: t('disk.unhashed', { count: report.unhashed }) }) : null,
      totals,
      section('largest', t('disk.largest'), '', list(report.largest)),
      dupes,
      never);
  }

  async function load() {
    try {
      const query = { limit: LIMIT };
      if (type) query.type = type;
      if (type && folder !== null) query.folder = folder;
      const report = await api.get('/disk', query);
      if (destroyed) return;
      if (!type) { allTypes = report.types || []; fillTypes(); }
      render(report);
    } catch (err) {
      if (!destroyed) setChildren(body, h('p', { class: 'lm-field-error', text: t('errors.action_failed', { message: errorText(err, t) }) }));
    }
  }

  async function remove(path, prefix) {
    const name = path.split('/').pop();
    if (!(await confirmDialog({ t, title: t('delete.title'), message: name, confirmLabel: t('delete.confirm'), danger: true }))) return;
    try {
      const data = await api.models(prefix).remove(path);
      toasts.show(t('toast.deleted_one', { name }), {
        action: data.batch_id ? {
          label: t('common.undo'),
          run: async () => {
            try { await api.undoDelete(data.batch_id); toasts.success(t('toast.restored')); } catch (err) {
              toasts.error(t('errors.action_failed', { message: errorText(err, t) }));
            }
            load();
          },
        } : null,
      });
    } catch (err) {
      toasts.error(t('errors.action_failed', { message: errorText(err, t) }));
    }
    load();
  }

  function onClick(event) {
    const del = event.target.closest('[data-delete]');
    if (del) { remove(del.dataset.delete, del.dataset.prefix); return; }
    const f = event.target.closest('[data-folder-of]');
    if (f) { type = f.dataset.folderOf; folder = f.dataset.folderName; typeSelect.value = type; load(); return; }
    if (event.target.closest('[data-disk="all-folders"]')) { folder = null; load(); }
  }
  function onType() { type = typeSelect.value; folder = null; load(); }
  el.addEventListener('click', onClick);
  typeSelect.addEventListener('change', onType);
  if (type) { fillTypes(); }
  // the full list of types comes from the unfiltered report
  if (type) api.get('/disk', { limit: 1 }).then((r) => { if (!destroyed) { allTypes = r.types || []; fillTypes(); } }).catch(() => {});
  load();

  return {
    el,
    reload: load,
    destroy() {
      destroyed = true;
      el.removeEventListener('click', onClick);
      typeSelect.removeEventListener('change', onType);
      el.remove();
    },
  };
}
