/**
 * The download dialog: paste a CivitAI model/version URL or id, choose version, file and
 * target folder (or a HuggingFace file link: choose type and folder), then follow progress with
 * pause, resume and cancel.
 */
import { h, closestIn, setChildren } from './dom.js';
import { createIcon } from './icon.js';
import { openModal } from './modal.js';
import { parseCivitaiRef } from '../lib/civitai_ref.js';
import { formatBytes, formatSpeed, formatDuration, formatPercent } from '../lib/format.js';
import { DOWNLOAD_STATUS_KEYS } from './progress_panel.js';
import { errorText } from '../i18n/error_text.js';

const FINAL = new Set(['completed', 'failed', 'cancelled']);

function snapshotError(error) {
  return typeof error === 'string' ? error : (error && (error.message || error.error)) || '';
}

/** The server picks a version's file by these (CivitAI's file `type` and `metadata`), not by id. */
function fileParams(file) {
  const meta = file.metadata || {};
  const out = {};
  for (const [key, value] of [['type', file.type], ['format', meta.format], ['size', meta.size], ['fp', meta.fp]]) {
    if (typeof value === 'string' && value) out[key] = value;
  }
  return out;
}

/** A HuggingFace file link (`…/<repo>/resolve|blob/<revision>/<path>`) → {url, repo, revision, path};
 * null for anything else. The server checks the host is its hub (issue 14). */
export function parseHuggingFaceRef(text) {
  let url;
  try { url = new URL(String(text || '').trim()); } catch { return null; }
  if (!/^https?:$/.test(url.protocol)) return null;
  const parts = url.pathname.split('/').slice(1).map((p) => { try { return decodeURIComponent(p); } catch { return p; } });
  const marker = parts.findIndex((p, i) => (p === 'resolve' || p === 'blob') && i >= 1 && i <= 2);
  if (marker < 0 || parts.length < marker + 3 || !parts[parts.length - 1]) return null;
  return { url: url.href, repo: parts.slice(0, marker).join('/'), revision: parts[marker + 1], path: parts.slice(marker + 2).join('/') };
}

function newDownloadId() {
  return (crypto.randomUUID ? crypto.randomUUID() : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`);
}

/** deps: {api, models, prefix, t, lang(), toasts, events, refresh()} */
export function openDownloadDialog(deps) {
  const { api, models, t } = deps;
  const ref = h('input', { class: 'lm-input', type: 'text', placeholder: t('download.ref_placeholder'), 'aria-label': t('download.ref_label'), autofocus: true, spellcheck: 'false', dataset: { role: 'download-ref' } });
  const lookup = h('button', { type: 'submit', class: 'lm-btn lm-btn--primary' }, createIcon('search', { size: 15 }), h('span', { text: t('download.lookup') }));
  const lookupForm = h('form', { class: 'lm-download-lookup' }, ref, lookup);
  const message = h('p', { class: 'lm-field-help', role: 'status', text: `${t('download.intro')} ${t('download.hf_intro')}` });
  const details = h('div', { class: 'lm-download-details', hidden: true });
  const progress = h('div', { class: 'lm-download-progress', hidden: true });
  const content = h('div', { class: 'lm-form' }, h('label', { class: 'lm-field' }, h('span', { class: 'lm-field-label', text: t('download.ref_label') }), lookupForm), message, details, progress);

  let versions = [];
  let hfRef = null; // a HuggingFace file instead of a CivitAI model (issue 14)
  let typeSelect;
  let versionSelect;
  let fileSelect;
  let rootSelect;
  let folderInput;
  let downloadId = null;
  let pollTimer = 0;
  let closeSocket = null;
  let status = '';
  let announced = false;

  const modal = openModal({
    t, title: t('download.title'), content, size: 'md',
    actions: [{ id: 'close', label: t('common.close') }, { id: 'start', label: t('download.start'), kind: 'primary', disabled: true }],
    async onAction(id) {
      if (id !== 'start') return true;
      await start();
      return false;
    },
    onClose() { clearTimeout(pollTimer); if (closeSocket) closeSocket(); unsub(); },
  });

  function fail(err) {
    const needs = hfRef ? 'download.hf_needs_token' : 'download.needs_key';
    message.textContent = err.status === 401 ? t(needs, { message: errorText(err, t) }) : t('errors.action_failed', { message: errorText(err, t) });
    message.classList.add('lm-field-error');
  }

  function currentVersion() { return versions.find((v) => String(v.id) === versionSelect?.value) || null; }

  function renderFiles() {
    if (hfRef) {
      const button = modal.button('start');
      if (button) button.disabled = Boolean(downloadId && !FINAL.has(status));
      return;
    }
    const version = currentVersion();
    const files = (version && version.files) || [];
    setChildren(fileSelect, ...files.map((f, i) => h('option', {
      value: String(f.id ?? i), selected: Boolean(f.primary),
      text: `${f.name || f.id} · ${f.sizeKB ? formatBytes(f.sizeKB * 1024, deps.lang()) : ''}${f.type ? ` · ${f.type}` : ''}`,
    })));
    fileSelect.disabled = files.length < 2;
    const start = modal.button('start');
    if (start) start.disabled = !version || Boolean(version.existsLocally) || Boolean(downloadId && !FINAL.has(status));
    versionNote.textContent = version && version.existsLocally ? t('download.already_local', { path: version.localPath || '' }) : '';
  }
  const versionNote = h('p', { class: 'lm-field-help lm-in-library' });

  async function doLookup() {
    message.classList.remove('lm-field-error');
    const parsed = parseCivitaiRef(ref.value);
    hfRef = parsed ? null : parseHuggingFaceRef(ref.value);
    if (hfRef) {
      renderHuggingFace(await models.roots().catch(() => ({ roots: [] })));
      return;
    }
    if (!parsed) { message.textContent = t('download.bad_ref'); message.classList.add('lm-field-error'); return; }
    message.textContent = t('common.loading');
    lookup.disabled = true;
    try {
      let modelId = parsed.modelId;
      let wanted = parsed.versionId;
      if (!modelId && wanted) {
        const data = await api.civitaiVersion(deps.prefix, wanted);
        const version = data.version || data;
        modelId = version.modelId || (version.model && version.model.id);
      }
      if (!modelId) throw new Error(t('download.bad_ref'));
      const [data, roots] = await Promise.all([models.civitaiVersions(modelId), models.roots()]);
      versions = data.versions || [];
      if (!versions.length) throw new Error(t('download.no_versions'));
      renderDetails(modelId, data, roots.roots || [], wanted);
      message.textContent = data.model_name || data.name || (data.model && data.model.name) || t('download.found', { count: versions.length });
    } catch (err) {
      fail(err);
    } finally {
      lookup.disabled = false;
    }
  }

  function renderDetails(modelId, data, roots, wanted) {
    details.dataset.modelId = String(modelId);
    versionSelect = h('select', { class: 'lm-select', 'aria-label': t('download.version') },
      versions.map((v) => h('option', {
        value: String(v.id), selected: wanted ? String(v.id) === String(wanted) : false,
        text: `${v.name || v.id}${v.baseModel ? ` · ${v.baseModel}` : ''}${v.existsLocally ? ` · ✓ ${t('details.in_library')}` : ''}`,
      })));
    fileSelect = h('select', { class: 'lm-select', 'aria-label': t('download.file') });
    rootSelect = h('select', { class: 'lm-select', 'aria-label': t('download.root') }, roots.map((r) => h('option', { value: r, text: r })));
    folderInput = h('input', { class: 'lm-input', type: 'text', placeholder: t('download.folder_placeholder'), 'aria-label': t('download.folder'), spellcheck: 'false' });
    setChildren(details, 
      h('label', { class: 'lm-field' }, h('span', { class: 'lm-field-label', text: t('download.version') }), versionSelect),
      versionNote,
      h('label', { class: 'lm-field' }, h('span', { class: 'lm-field-label', text: t('download.file') }), fileSelect),
      h('div', { class: 'lm-inline-fields' },
        h('label', { class: 'lm-field' }, h('span', { class: 'lm-field-label', text: t('download.root') }), rootSelect),
        h('label', { class: 'lm-field' }, h('span', { class: 'lm-field-label', text: t('download.folder') }), folderInput)));
    details.hidden = false;
    versionSelect.addEventListener('change', renderFiles);
    renderFiles();
  }

  /** A HuggingFace file: no versions to pick; the type (default: the server guesses it from the
   * file's name and header) and the folder are the user's. */
  function renderHuggingFace(roots) {
    message.textContent = t('download.hf_found', { repo: hfRef.repo, path: hfRef.path, revision: hfRef.revision });
    typeSelect = h('select', { class: 'lm-select', 'aria-label': t('download.type'), dataset: { role: 'download-type' } },
      h('option', { value: '', text: t('download.type_auto') }),
      ...['lora', 'checkpoint', 'embedding'].map((type) => h('option', { value: type, text: t(`types.${type}`) })));
    rootSelect = h('select', { class: 'lm-select', 'aria-label': t('download.root') },
      h('option', { value: '', text: t('download.type_auto') }), (roots.roots || []).map((r) => h('option', { value: r, text: r })));
    folderInput = h('input', { class: 'lm-input', type: 'text', placeholder: t('download.folder_placeholder'), 'aria-label': t('download.folder'), spellcheck: 'false' });
    const rootField = h('label', { class: 'lm-field' }, h('span', { class: 'lm-field-label', text: t('download.root') }), rootSelect);
    // the listed roots are this page's type: they apply once that type is chosen
    const syncRoot = () => { rootField.hidden = typeSelect.value !== deps.modelType; if (rootField.hidden) rootSelect.value = ''; };
    typeSelect.addEventListener('change', syncRoot);
    setChildren(details,
      h('label', { class: 'lm-field' }, h('span', { class: 'lm-field-label', text: t('download.type') }), typeSelect),
      h('div', { class: 'lm-inline-fields' }, rootField,
        h('label', { class: 'lm-field' }, h('span', { class: 'lm-field-label', text: t('download.folder') }), folderInput)));
    syncRoot();
    details.hidden = false;
    renderFiles();
  }

  function huggingFacePayload() {
    const relative = folderInput.value.trim().replace(/^[\\/]+|[\\/]+$/g, '');
    downloadId = newDownloadId();
    const payload = { hf_url: hfRef.url, download_id: downloadId, use_default_paths: false };
    if (typeSelect.value) payload.model_type = typeSelect.value;
    if (rootSelect.value) payload.model_root = rootSelect.value;
    if (relative) payload.relative_path = relative;
    return payload;
  }

  async function start() {
    if (hfRef) { await send(huggingFacePayload()); return; }
    const version = currentVersion();
    if (!version) return;
    const file = ((version.files || []).find((f, i) => String(f.id ?? i) === fileSelect.value)) || null;
    const relative = folderInput.value.trim().replace(/^[\\/]+|[\\/]+$/g, '');
    downloadId = newDownloadId();
    const payload = {
      model_id: Number(details.dataset.modelId), model_version_id: version.id, download_id: downloadId,
      model_type: deps.modelType, model_root: rootSelect.value || undefined, use_default_paths: !relative,
    };
    if (relative) payload.relative_path = relative;
    if (file && !file.primary) payload.file_params = fileParams(file);
    await send(payload);
  }

  async function send(payload) {
    status = 'queued';
    announced = false;
    renderProgress({ status: 'queued' });
    renderFiles();
    try {
      const data = await api.downloadModel(payload);
      if (data.download_id) downloadId = data.download_id;
      track();
    } catch (err) {
      status = 'failed';
      downloadId = null;
      progress.hidden = true;
      renderFiles();
      fail(err);
    }
  }

  function track() {
    stopTracking();
    closeSocket = deps.events.open ? deps.events.open(`ws/download-progress?id=${encodeURIComponent(downloadId)}`) : null;
    poll();
  }

  const unsub = deps.events.on('download_progress', (msg) => {
    if (downloadId && (msg.download_id === downloadId || msg.id === downloadId)) renderProgress(msg);
  });

  async function poll() {
    if (!downloadId || FINAL.has(status)) return;
    try {
      const data = await api.downloadProgress(downloadId);
      renderProgress(data.progress && typeof data.progress === 'object' ? data.progress : data);
    } catch (err) {
      if (!err.isNotFound) fail(err);
    }
    if (!FINAL.has(status)) pollTimer = setTimeout(poll, 1000);
  }

  function stopTracking() {
    clearTimeout(pollTimer);
    if (closeSocket) { closeSocket(); closeSocket = null; }
  }

  // Built once and updated in place: progress ticks must not replace the buttons being clicked.
  const statusLabel = h('strong');
  const factsLabel = h('span', { class: 'lm-muted' });
  const barFill = h('span', { class: 'lm-bar-fill', style: { width: '0%' } });
  const bar = h('div', { class: 'lm-bar', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': '0', 'aria-label': t('download.progress') }, barFill);
  const errorLine = h('p', { class: 'lm-field-error', hidden: true });
  const pathLine = h('p', { class: 'lm-field-help lm-mono', hidden: true });
  const pauseButton = h('button', { type: 'button', class: 'lm-btn lm-btn--ghost lm-btn--sm', dataset: { dl: 'pause' } },
    createIcon('pause', { size: 14 }), h('span', { text: t('download.pause') }));
  const resumeButton = h('button', { type: 'button', class: 'lm-btn lm-btn--ghost lm-btn--sm', dataset: { dl: 'resume' }, hidden: true },
    createIcon('play', { size: 14 }), h('span', { text: t('download.resume') }));
  const cancelButton = h('button', { type: 'button', class: 'lm-btn lm-btn--danger lm-btn--sm', dataset: { dl: 'cancel' } },
    createIcon('stop', { size: 14 }), h('span', { text: t('common.cancel') }));
  const controls = h('div', { class: 'lm-download-controls' }, pauseButton, resumeButton, cancelButton);
  setChildren(progress, h('div', { class: 'lm-progress-row' }, statusLabel, factsLabel), bar, errorLine, pathLine, controls);

  function renderProgress(snapshot) {
    status = snapshot.status || status;
    const lang = deps.lang();
    const pct = Number.isFinite(snapshot.progress) ? Math.round(snapshot.progress) : formatPercent(snapshot.bytes_downloaded, snapshot.total_bytes);
    progress.hidden = false;
    statusLabel.textContent = t(DOWNLOAD_STATUS_KEYS[status] || DOWNLOAD_STATUS_KEYS.queued);
    factsLabel.textContent = [
      snapshot.total_bytes ? `${formatBytes(snapshot.bytes_downloaded, lang)} / ${formatBytes(snapshot.total_bytes, lang)}` : '',
      status === 'downloading' ? formatSpeed(snapshot.bytes_per_second, lang) : '',
      status === 'downloading' && snapshot.eta_seconds ? t('download.eta', { time: formatDuration(snapshot.eta_seconds) }) : '',
    ].filter(Boolean).join(' · ');
    barFill.style.width = `${pct || 0}%`;
    bar.setAttribute('aria-valuenow', String(pct || 0));
    errorLine.textContent = snapshot.error ? snapshotError(snapshot.error) : '';
    errorLine.hidden = !snapshot.error;
    pathLine.textContent = status === 'completed' ? snapshot.file_path || '' : '';
    pathLine.hidden = !pathLine.textContent;
    controls.hidden = FINAL.has(status);
    pauseButton.hidden = status === 'paused';
    resumeButton.hidden = status !== 'paused';
    if (FINAL.has(status) && !announced) {
      announced = true;  // the socket and polling both report the end: act once
      stopTracking();
      renderFiles();
      if (status === 'completed') { deps.toasts.success(t('download.done')); deps.refresh(); }
    }
  }

  progress.addEventListener('click', async (event) => {
    const button = closestIn(event.target, '[data-dl]', progress);
    if (!button || !downloadId) return;
    button.disabled = true;
    try {
      const what = button.dataset.dl;
      if (what === 'pause') await api.pauseDownload(downloadId);
      else if (what === 'resume') { await api.resumeDownload(downloadId); if (!pollTimer) poll(); }
      else if (what === 'cancel') await api.cancelDownload(downloadId);
      const data = await api.downloadProgress(downloadId).catch(() => null);
      if (data) renderProgress(data.progress && typeof data.progress === 'object' ? data.progress : data);
    } catch (err) {
      fail(err);
    } finally {
      button.disabled = false;
    }
  });
  lookupForm.addEventListener('submit', (event) => { event.preventDefault(); doLookup(); });
  return modal;
}
