/**
 * The task panel fed by the socket hub: initial scan, background hashing, CivitAI fetch-all,
 * auto-organize and downloads, each with counts, a bar and (where possible) Cancel.
 */
import { h, closestIn } from './dom.js';
import { createIcon } from './icon.js';
import { formatCount, formatPercent, formatBytes, formatSpeed } from '../lib/format.js';
import { errorText } from '../i18n/error_text.js';

/** Download statuses → label keys (literal, so the locale checker sees them). */
export const DOWNLOAD_STATUS_KEYS = Object.freeze({
  queued: 'download.status_queued', downloading: 'download.status_downloading', paused: 'download.status_paused',
  verifying: 'download.status_verifying', completed: 'download.status_completed', failed: 'download.status_failed',
  cancelled: 'download.status_cancelled',
});

const TERMINAL = new Set(['completed', 'complete', 'done', 'cancelled', 'canceled', 'error', 'failed', 'ready']);

/** deps: {events, api, t, lang(), typeLabel(modelType), onFinished(kind, message)} */
export function createProgressPanel(root, deps) {
  const { events, t } = deps;
  const tasks = new Map();
  const removeTimers = new Map();
  let collapsed = false;
  const list = h('ul', { class: 'lm-progress-list' });
  const title = h('span', { class: 'lm-progress-title' });
  const toggle = h('button', { type: 'button', class: 'lm-icon-btn lm-icon-btn--xs', dataset: { progress: 'toggle' }, 'aria-expanded': 'true', 'aria-label': t('progress.toggle') }, createIcon('chevronDown', { size: 14 }));
  root.classList.add('lm-progress');
  root.setAttribute('role', 'region');
  root.setAttribute('aria-label', t('progress.title'));
  root.hidden = true;
  root.append(h('div', { class: 'lm-progress-head' }, createIcon('refresh', { size: 14, className: 'lm-icon lm-spin' }), title, toggle), list);

  function set(key, task) {
    tasks.set(key, { ...(tasks.get(key) || {}), ...task, key });
    clearTimeout(removeTimers.get(key));
    if (task.finished) removeTimers.set(key, setTimeout(() => { tasks.delete(key); render(); }, task.linger ?? 4000));
    render();
  }

  /** One row per task, kept across updates so a Cancel button is never swapped under the pointer. */
  const rows = new Map();

  function rowFor(key) {
    let row = rows.get(key);
    if (row) return row;
    const label = h('span', { class: 'lm-progress-label' });
    const cancel = h('button', { type: 'button', class: 'lm-btn lm-btn--ghost lm-btn--xs', dataset: { cancel: key }, text: t('common.cancel'), hidden: true });
    const fill = h('span', { class: 'lm-bar-fill' });
    const bar = h('div', { class: 'lm-bar', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100' }, fill);
    const detail = h('div', { class: 'lm-progress-detail' });
    const el = h('li', { class: 'lm-progress-item', dataset: { task: key } }, h('div', { class: 'lm-progress-row' }, label, cancel), bar, detail);
    row = { el, label, cancel, fill, bar, detail };
    rows.set(key, row);
    return row;
  }

  function render() {
    root.hidden = tasks.size === 0;
    title.textContent = t('progress.title_count', { count: tasks.size });
    toggle.setAttribute('aria-expanded', String(!collapsed));
    list.hidden = collapsed;
    root.classList.toggle('lm-progress--busy', [...tasks.values()].some((x) => !x.finished));
    for (const [key, row] of rows) if (!tasks.has(key)) { row.el.remove(); rows.delete(key); }
    for (const task of tasks.values()) {
      const row = rowFor(task.key);
      row.el.classList.toggle('lm-progress-item--done', Boolean(task.finished));
      row.el.classList.toggle('lm-progress-item--error', Boolean(task.error));
      row.label.textContent = task.label;
      row.cancel.hidden = !(task.cancel && !task.finished);
      const indeterminate = task.percent === null || task.percent === undefined;
      row.fill.classList.toggle('lm-bar-fill--indeterminate', indeterminate);
      row.fill.style.width = `${indeterminate ? 30 : task.percent}%`;
      row.bar.setAttribute('aria-valuenow', String(task.percent ?? 0));
      row.bar.setAttribute('aria-label', task.label);
      row.detail.textContent = task.detail || '';
      row.detail.hidden = !task.detail;
      if (row.el.parentNode !== list) list.append(row.el);
    }
  }

  const lang = () => deps.lang();

  function onInit(msg) {
    const key = `init:${msg.model_type || 'all'}`;
    const ready = msg.ready || msg.stage === 'ready';
    // The server replays its last init message to new sockets: a finished scan is not news.
    if (ready && !tasks.has(key)) return;
    const stageKey = { loading_cache: 'progress.stage_loading_cache', scanning: 'progress.stage_scanning', hashing: 'progress.stage_hashing', ready: 'progress.stage_ready' }[msg.stage] || 'progress.stage_scanning';
    set(key, {
      label: t('progress.init', { type: deps.typeLabel(msg.model_type) }),
      detail: msg.total ? `${t(stageKey)} · ${formatCount(msg.scanned, lang())} / ${formatCount(msg.total, lang())}` : t(stageKey),
      percent: ready ? 100 : Number.isFinite(msg.progress) ? msg.progress : null,
      finished: ready, linger: 1500,
    });
  }

  function onHash(msg) {
    const total = Number(msg.queued || 0) + Number(msg.done || 0);
    const finished = !msg.queued && !msg.current;
    set('hash', {
      label: t('progress.hashing'),
      detail: finished ? t('progress.hashing_done') : t('progress.hashing_detail', { done: formatCount(msg.done, lang()), total: formatCount(total, lang()), name: msg.current || '' }),
      percent: total ? formatPercent(msg.done, total) : null,
      finished, linger: 2000,
    });
  }

  function onFetchAll(msg) {
    const key = `civitai:${msg.model_type || 'all'}`;
    const finished = TERMINAL.has(msg.status);
    set(key, {
      label: t('progress.civitai', { type: deps.typeLabel(msg.model_type) }),
      detail: t('progress.civitai_detail', {
        processed: formatCount(msg.processed, lang()), total: formatCount(msg.total, lang()), updated: formatCount(msg.updated, lang()),
        not_found: formatCount(msg.not_found, lang()), failed: formatCount(msg.failed, lang()),
      }) + (msg.current_name && !finished ? ` · ${msg.current_name}` : '') + (msg.status === 'cancelled' ? ` · ${t('progress.cancelled')}` : ''),
      percent: msg.total ? formatPercent(msg.processed, msg.total) : null,
      cancel: { kind: 'civitai', modelType: msg.model_type },
      error: msg.status === 'error', finished, linger: 8000,
    });
    if (finished && deps.onFinished) deps.onFinished('civitai', msg);
  }

  function onOrganize(msg) {
    const key = `organize:${msg.model_type || 'all'}`;
    const status = msg.status || msg.state || '';
    const finished = TERMINAL.has(status);
    const total = msg.total ?? msg.total_models ?? 0;
    const processed = msg.processed ?? msg.done ?? 0;
    set(key, {
      label: t('progress.organize', { type: deps.typeLabel(msg.model_type) }),
      detail: t('progress.organize_detail', { processed: formatCount(processed, lang()), total: formatCount(total, lang()), moved: formatCount(msg.moved ?? msg.success ?? 0, lang()) }),
      percent: total ? formatPercent(processed, total) : null,
      error: status === 'error' || status === 'failed', finished, linger: 6000,
    });
    if (finished && deps.onFinished) deps.onFinished('organize', msg);
  }

  function onDownload(msg) {
    const id = msg.download_id || msg.id;
    if (!id) return;
    const status = msg.status || '';
    const finished = TERMINAL.has(status);
    const name = msg.file_name || msg.model_name || (msg.file_path ? msg.file_path.split('/').pop() : '') || id;
    const bytes = msg.total_bytes ? `${formatBytes(msg.bytes_downloaded, lang())} / ${formatBytes(msg.total_bytes, lang())}` : '';
    set(`download:${id}`, {
      label: t('progress.download', { name }),
      detail: [t(DOWNLOAD_STATUS_KEYS[status] || DOWNLOAD_STATUS_KEYS.queued), bytes, status === 'downloading' ? formatSpeed(msg.bytes_per_second, lang()) : '',
        typeof msg.error === 'string' ? msg.error : (msg.error && msg.error.message) || ''].filter(Boolean).join(' · '),
      percent: Number.isFinite(msg.progress) ? Math.round(msg.progress) : null,
      cancel: { kind: 'download', id },
      error: status === 'failed', finished, linger: 8000,
    });
    if (status === 'completed' && deps.onFinished) deps.onFinished('download', msg);
  }

  async function onClick(event) {
    if (closestIn(event.target, '[data-progress="toggle"]', root)) { collapsed = !collapsed; render(); return; }
    const button = closestIn(event.target, '[data-cancel]', root);
    if (!button) return;
    const task = tasks.get(button.dataset.cancel);
    if (!task || !task.cancel) return;
    button.disabled = true;
    try {
      if (task.cancel.kind === 'civitai') await deps.api.models(deps.prefixOf(task.cancel.modelType)).cancelTask();
      else if (task.cancel.kind === 'download') await deps.api.cancelDownload(task.cancel.id);
    } catch (err) {
      if (deps.toasts) deps.toasts.error(t('errors.action_failed', { message: errorText(err, t) }));
      button.disabled = false;
    }
  }

  root.addEventListener('click', onClick);
  const unsubs = [
    events.on('init_progress', onInit),
    events.on('hash_progress', onHash),
    events.on('civitai_fetch_progress', onFetchAll),
    events.on('auto_organize_progress', onOrganize),
    events.on('download_progress', onDownload),
  ];

  return {
    update: render,
    set,
    destroy() {
      unsubs.forEach((fn) => fn());
      for (const timer of removeTimers.values()) clearTimeout(timer);
      root.replaceChildren();
    },
  };
}
