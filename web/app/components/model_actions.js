/**
 * The model actions every surface shares (cards, context menu, details dialog, bulk bar):
 * copy, favourite, CivitAI, rename, move, preview, exclude, delete with Undo, tags.
 * A controller, not a view: it calls the API, shows toasts and tells the view to refresh.
 */
import { h } from './dom.js';
import { promptDialog, confirmDialog } from './modal.js';
import { pickFolder } from './folder_picker.js';
import { modelSyntax, triggerWords, civitaiModelUrl, displayName, normaliseTags } from '../lib/model_text.js';
import { errorText } from '../i18n/error_text.js';

/** Copy text; falls back to a hidden textarea where the async clipboard is unavailable. */
export async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch { /* fall through */ }
  const area = h('textarea', { class: 'lm-sr-only', readonly: true, 'aria-hidden': 'true' });
  area.value = text;
  document.body.append(area);
  area.select();
  let ok = false;
  try { ok = document.execCommand('copy'); } catch { ok = false; }
  area.remove();
  return ok;
}

const FILE_NAME_BAD = /[\\/:*?"<>|\u0000-\u001f]/;

/**
 * deps: {api, models, t, toasts, settings (store), refresh(), patchItem(path, changes),
 *        openDetails(item), host}
 */
export function createModelActions(deps) {
  const { api, models, t, toasts } = deps;
  const fileInput = h('input', { type: 'file', accept: 'image/*,video/mp4,video/webm', class: 'lm-sr-only', tabindex: '-1', 'aria-hidden': 'true', dataset: { role: 'preview-input' } });
  (deps.host || document.body).append(fileInput);
  let previewTarget = null;

  function fail(err) {
    toasts.error(t('errors.action_failed', { message: errorText(err, t) }));
  }

  async function run(fn) {
    try { return await fn(); } catch (err) { fail(err); return undefined; }
  }

  async function copySyntax(item) {
    const strength = Number(deps.settings.get().default_lora_strength ?? 1);
    const text = modelSyntax(item, Number.isFinite(strength) ? strength : 1);
    if (await copyText(text)) toasts.success(t('toast.copied', { text }));
    else toasts.error(t('toast.copy_failed'));
  }

  async function copyTriggerWords(item) {
    const words = triggerWords(item);
    if (!words.length) { toasts.info(t('toast.no_trigger_words')); return; }
    const text = words.join(', ');
    if (await copyText(text)) toasts.success(t('toast.copied', { text }));
    else toasts.error(t('toast.copy_failed'));
  }

  async function toggleFavorite(item) {
    const favorite = !item.favorite;
    deps.patchItem(item.file_path, { favorite });
    try {
      await models.saveMetadata(item.file_path, { favorite });
    } catch (err) {
      deps.patchItem(item.file_path, { favorite: !favorite });
      fail(err);
    }
  }

  async function fetchCivitai(item) {
    const toast = toasts.info(t('toast.fetching_civitai', { name: displayName(item) }), { timeout: 0 });
    try {
      const data = await models.fetchCivitai(item.file_path);
      toast.dismiss();
      toasts.success(t('toast.civitai_updated', { name: displayName(item) }));
      if (data.metadata && data.metadata.file_path) deps.patchItem(item.file_path, data.metadata);
      deps.refresh();
      return data;
    } catch (err) {
      toast.dismiss();
      if (err.status === 404 && err.code !== 'http_404') toasts.info(t('toast.civitai_not_found', { name: displayName(item) }));
      else fail(err);
      return null;
    }
  }

  async function openCivitai(item) {
    let url = civitaiModelUrl(item);
    if (!url) {
      const data = await run(() => models.civitaiUrl(item.file_path));
      url = data && data.civitai_url;
    }
    if (!url) { toasts.info(t('toast.not_on_civitai')); return; }
    window.open(url, '_blank', 'noopener,noreferrer');
  }

  async function rename(item) {
    const name = await promptDialog({
      t, title: t('rename.title'), label: t('rename.label'), value: item.file_name, confirmLabel: t('rename.confirm'),
      validate(text) {
        if (!text) return t('common.required');
        if (FILE_NAME_BAD.test(text) || text === '.' || text === '..') return t('rename.invalid');
        return '';
      },
    });
    if (!name || name === item.file_name) return;
    await run(async () => {
      await models.rename(item.file_path, name);
      toasts.success(t('toast.renamed', { name }));
      deps.refresh();
    });
  }

  async function move(items) {
    const target = await pickFolder(deps, { title: t('move.title'), count: items.length });
    if (!target) return false;
    return run(async () => {
      if (items.length === 1) {
        await models.move(items[0].file_path, target);
        toasts.success(t('toast.moved', { count: 1 }));
      } else {
        const data = await models.moveBulk(items.map((i) => i.file_path), target);
        const results = data.results || [];
        const failed = results.filter((r) => r.success === false);
        if (failed.length) toasts.error(t('toast.move_partial', { failed: failed.length, count: items.length, reason: failed[0].error || failed[0].message || '' }));
        else toasts.success(t('toast.moved', { count: items.length }));
      }
      deps.refresh();
      return true;
    });
  }

  let previewDone = null;

  /** Ask for a file, upload it; `onDone(updatedItem)` runs after a successful replacement. */
  function choosePreview(item, onDone = null) {
    previewTarget = item;
    previewDone = onDone;
    fileInput.value = '';
    fileInput.click();
  }

  async function replacePreview(item, file) {
    if (!file) return;
    if (!/^(image|video)\//.test(file.type || '')) { toasts.error(t('toast.preview_type')); return; }
    const toast = toasts.info(t('toast.uploading_preview'), { timeout: 0 });
    try {
      const data = await models.replacePreview(item.file_path, file);
      toast.dismiss();
      const url = data.preview_url || '';
      const updated = data.item && data.item.file_path === item.file_path
        ? data.item
        : { ...item, preview_url: url, preview_type: file.type.startsWith('video/') ? 'video' : 'image' };
      deps.patchItem(item.file_path, updated);
      toasts.success(t('toast.preview_replaced'));
      return updated;
    } catch (err) {
      toast.dismiss();
      fail(err);
    }
  }

  fileInput.addEventListener('change', () => {
    const file = fileInput.files && fileInput.files[0];
    const item = previewTarget;
    const onDone = previewDone;
    previewTarget = null;
    previewDone = null;
    if (file && item) {
      replacePreview(item, file).then((updated) => { if (updated && onDone) onDone(updated); });
    }
  });

  async function exclude(item) {
    await run(async () => {
      await models.exclude(item.file_path);
      deps.refresh();
      toasts.show(t('toast.excluded', { name: displayName(item) }), {
        action: { label: t('common.undo'), run: () => run(async () => { await models.unexclude(item.file_path); deps.refresh(); }) },
      });
    });
  }

  async function remove(items, { confirm = items.length > 1 } = {}) {
    if (!items.length) return false;
    if (confirm && !(await confirmDialog({
      t, title: t('delete.title'), message: t('delete.confirm_many', { count: items.length }), confirmLabel: t('delete.confirm'), danger: true,
    }))) return false;
    return run(async () => {
      const data = items.length === 1
        ? await models.remove(items[0].file_path)
        : await models.bulkDelete(items.map((i) => i.file_path));
      const failed = (data.results || []).filter((r) => r.success === false);
      deps.refresh();
      const message = items.length === 1 ? t('toast.deleted_one', { name: displayName(items[0]) }) : t('toast.deleted', { count: items.length - failed.length });
      const batchId = data.batch_id;
      toasts.show(message, {
        kind: failed.length ? 'warning' : 'info',
        action: batchId ? { label: t('common.undo'), run: () => undoDelete(batchId) } : null,
      });
      if (failed.length) toasts.error(t('toast.delete_partial', { failed: failed.length, reason: failed[0].error || '' }));
      return true;
    });
  }

  async function undoDelete(batchId) {
    await run(async () => {
      await api.undoDelete(batchId);
      toasts.success(t('toast.restored'));
      deps.refresh();
    });
  }

  async function addTags(items) {
    const text = await promptDialog({ t, title: t('bulk.tag_title', { count: items.length }), label: t('bulk.tag_label'), confirmLabel: t('bulk.tag_confirm') });
    const tags = text ? normaliseTags(text) : [];
    if (!tags.length) return;
    let failed = 0;
    let firstError = null;
    const queue = [...items];
    async function worker() {
      while (queue.length) {
        const item = queue.shift();
        try { await models.addTags(item.file_path, tags); } catch (err) { failed += 1; firstError = firstError || err; }
      }
    }
    await Promise.all([worker(), worker(), worker()]);
    deps.refresh();
    if (failed) fail(firstError);
    else toasts.success(t('toast.tagged', { count: items.length }));
  }

  async function refreshCivitai(items) {
    const toast = toasts.info(t('toast.refreshing', { done: 0, count: items.length }), { timeout: 0 });
    let done = 0;
    let updated = 0;
    let firstError = null;
    for (const item of items) {
      try { await models.fetchCivitai(item.file_path); updated += 1; } catch (err) { if (!(err.status === 404 && err.code !== 'http_404')) firstError = firstError || err; }
      done += 1;
      toast.update(t('toast.refreshing', { done, count: items.length }));
    }
    toast.dismiss();
    deps.refresh();
    if (firstError) fail(firstError);
    toasts.success(t('toast.refreshed', { updated, count: items.length }));
  }

  /** Whether the page is served by ComfyUI (the shell says so): only then can it add to a workflow. */
  const canAddToWorkflow = () => document.body?.dataset.host === 'comfyui';

  /** Ask the open ComfyUI editor to add the model (into a selected LoRA list node, else a loader node). */
  async function addToWorkflow(item) {
    await run(async () => {
      await api.post('/graph/add', { file_path: item.file_path });
      toasts.success(t('toast.sent_to_workflow', { name: displayName(item) }));
    });
  }

  return {
    canAddToWorkflow, addToWorkflow,
    copySyntax, copyTriggerWords, toggleFavorite, fetchCivitai, openCivitai, rename, move,
    choosePreview, replacePreview, exclude, remove, undoDelete, addTags, refreshCivitai, fail,
    destroy() { fileInput.remove(); },
  };
}
