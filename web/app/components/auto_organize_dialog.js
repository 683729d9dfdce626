/**
 * Auto-organize: ask the server for a dry-run plan (from → to, skipped with reasons), show it,
 * then run the same plan and follow its progress to the result.
 */
import { h, setChildren } from './dom.js';
import { createIcon } from './icon.js';
import { openModal } from './modal.js';
import { formatCount, formatPercent } from '../lib/format.js';
import { errorText } from '../i18n/error_text.js';

function planOf(data) {
  const raw = data.plan || data.moves || data.planned || data.results || [];
  const list = Array.isArray(raw) ? raw : (raw.moves || []);
  const moves = [];
  const skipped = [...(data.skipped || [])];
  for (const entry of list) {
    const from = entry.from || entry.source || entry.old_path || entry.file_path || '';
    const to = entry.to || entry.target || entry.new_path || entry.target_path || '';
    if (entry.skipped || entry.action === 'skip' || (!to && entry.reason)) skipped.push(entry);
    else if (from && to && from !== to) moves.push({ from, to });
  }
  return { moves, skipped };
}

function tail(path, parts = 3) {
  return String(path || '').split('/').slice(-parts).join('/');
}

/** deps: {models, t, lang(), toasts, events, modelType, filePaths (optional), refresh()} */
export function openAutoOrganizeDialog(deps) {
  const { models, t } = deps;
  const body = h('div', { class: 'lm-organize' }, h('p', { class: 'lm-muted', text: t('organize.planning') }));
  const scope = deps.filePaths && deps.filePaths.length ? { file_paths: deps.filePaths } : {};
  let running = false;
  let pollTimer = 0;

  const modal = openModal({
    t, title: t('organize.title'), content: body, size: 'lg',
    actions: [{ id: 'close', label: t('common.close') }, { id: 'run', label: t('organize.run'), kind: 'primary', disabled: true }],
    async onAction(id) {
      if (id !== 'run') return true;
      await run();
      return false;
    },
    onClose() { clearTimeout(pollTimer); unsub(); },
  });

  function renderPlan(plan) {
    const lang = deps.lang();
    setChildren(body, 
      h('p', { class: 'lm-modal-text', text: t('organize.summary', { moves: formatCount(plan.moves.length, lang), skipped: formatCount(plan.skipped.length, lang) }) }),
      plan.moves.length ? h('ul', { class: 'lm-plan' }, plan.moves.slice(0, 500).map((m) => h('li', { class: 'lm-plan-row' },
        h('span', { class: 'lm-mono lm-plan-from', text: tail(m.from), title: m.from }),
        createIcon('chevronRight', { size: 14 }),
        h('span', { class: 'lm-mono lm-plan-to', text: tail(m.to), title: m.to })))) : h('p', { class: 'lm-muted', text: t('organize.nothing') }),
      plan.moves.length > 500 ? h('p', { class: 'lm-muted', text: t('organize.more', { count: plan.moves.length - 500 }) }) : null,
      plan.skipped.length ? h('details', { class: 'lm-plan-skipped' },
        h('summary', { text: t('organize.skipped', { count: plan.skipped.length }) }),
        h('ul', { class: 'lm-plan' }, plan.skipped.slice(0, 200).map((s) => h('li', { class: 'lm-plan-row' },
          h('span', { class: 'lm-mono', text: tail(s.from || s.file_path || s.source || ''), title: s.from || s.file_path || '' }),
          h('span', { class: 'lm-muted', text: [s.reason, s.detail].filter(Boolean).join(': ') || s.message || '' }))))) : null);
    const button = modal.button('run');
    if (button) button.disabled = plan.moves.length === 0;
  }

  async function plan() {
    try {
      const data = await models.autoOrganize({ ...scope, dry_run: true });
      renderPlan(planOf(data));
    } catch (err) {
      setChildren(body, h('p', { class: 'lm-field-error', role: 'alert', text: t('errors.action_failed', { message: errorText(err, t) }) }));
    }
  }

  const bar = h('span', { class: 'lm-bar-fill lm-bar-fill--indeterminate', style: { width: '30%' } });
  const line = h('p', { class: 'lm-muted' });
  function renderProgress(p) {
    const total = p.total ?? p.total_models ?? 0;
    const done = p.processed ?? p.done ?? 0;
    if (total) { bar.classList.remove('lm-bar-fill--indeterminate'); bar.style.width = `${formatPercent(done, total)}%`; }
    line.textContent = t('progress.organize_detail', { processed: formatCount(done, deps.lang()), total: formatCount(total, deps.lang()), moved: formatCount(p.moved ?? 0, deps.lang()) });
    const status = p.status || p.state;
    if (['completed', 'complete', 'done', 'error', 'failed', 'cancelled'].includes(status)) finish(p.result || p);
  }

  /** The run's answer (`summary`, `failed` list) or a progress snapshot, as counts. */
  function outcome(result) {
    const summary = result.summary || result;
    const failures = Array.isArray(result.failed) ? result.failed : [];
    return {
      moved: summary.moved ?? 0,
      failed: Array.isArray(summary.failed) ? summary.failed.length : (summary.failed ?? failures.length),
      failures,
      error: result.error,
    };
  }

  function finish(result) {
    if (!running) return;
    running = false;
    clearTimeout(pollTimer);
    const { moved, failed, failures, error } = outcome(result);
    setChildren(body, h('div', { class: 'lm-empty' },
      createIcon(failed || error ? 'alert' : 'check', { size: 28 }),
      h('p', { text: t('organize.done', { moved: formatCount(moved, deps.lang()), failed: formatCount(failed, deps.lang()) }) }),
      error ? h('p', { class: 'lm-field-error', text: String(error.message || error) }) : null),
    failures.length ? h('ul', { class: 'lm-plan' }, failures.slice(0, 200).map((f) => h('li', { class: 'lm-plan-row' },
      h('span', { class: 'lm-mono', text: tail(f.file_path), title: f.file_path || '' }),
      h('span', { class: 'lm-field-error', text: f.error || f.code || '' })))) : null);
    deps.refresh();
  }

  async function poll() {
    if (!running) return;
    try {
      const data = await models.autoOrganizeProgress();
      if (data.progress || data.status) renderProgress(data.progress || data);
    } catch { /* the socket may still report */ }
    if (running) pollTimer = setTimeout(poll, 1000);
  }

  const unsub = deps.events.on('auto_organize_progress', (msg) => {
    if (running && (!msg.model_type || msg.model_type === deps.modelType)) renderProgress(msg);
  });

  async function run() {
    running = true;
    modal.button('run').disabled = true;
    setChildren(body, h('p', { class: 'lm-modal-text', text: t('organize.running') }),
      h('div', { class: 'lm-bar', role: 'progressbar', 'aria-label': t('organize.title') }, bar), line);
    try {
      // The server answers when the run is over (progress arrives on the socket meanwhile);
      // a server that answers at once with a running status is followed by polling.
      const data = await models.autoOrganize({ ...scope, dry_run: false });
      if (data.summary) finish(data);
      else if (data.status && !['running', 'started', 'queued'].includes(data.status)) renderProgress(data);
      else poll();
    } catch (err) {
      running = false;
      setChildren(body, h('p', { class: 'lm-field-error', role: 'alert', text: t('errors.action_failed', { message: errorText(err, t) }) }));
    }
  }

  plan();
  return modal;
}
