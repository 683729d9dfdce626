/**
 * "Missing in this workflow" (issue 14): when ComfyUI loads a workflow (a file, a template, a
 * dropped PNG whose graph the frontend parsed), ask the library which of its models are moved or
 * missing (POST /api/lm/workflow/missing-models with the serialised graph) and show them in a
 * folding section of our sidebar: "Use this file" rewrites the widgets that name a moved model to
 * the name the library has it under; "Download" queues the CivitAI (or HuggingFace) candidate
 * into the folder the workflow names, then points the widgets at the downloaded file.
 *
 * A dropped PNG's A1111 `parameters` text (its hashes find renamed files) goes along too: the
 * frontends parse it but do not expose it, so `onDrop` (a passive document listener: it never
 * prevents or stops the event) reads the dropped file's text chunks, and the next check, the
 * one for the graph ComfyUI builds from that file, sends them.
 *
 * Owns the last report and the section's DOM; it changes only the widgets the report names and
 * must not import ComfyUI's scripts (app, compat and fetchApi come in as deps).
 */
import { h } from '../components/dom.js';
import { droppedPng, pngParameters } from './png_text.js';
import { LIST_CONTROLLER } from './nodes/list_nodes.js';
import { parseStored, serialize } from './nodes/lora_list_model.js';

const ROUTE = '/lm/workflow/missing-models';
const DROP_WINDOW_MS = 30_000; // a drop older than this did not lead to the graph being checked

/** English fallbacks; locales/<lang>/main.json `modelLibrary.missing*` translate them. */
export const MISSING_TEXT = Object.freeze({
  missingTitle: 'Missing in this workflow',
  missingMoved: 'In the library as {name}',
  missingMovedUnloadable: 'In the library as {name}, which this loader cannot load',
  missingAbsent: 'Not in the library',
  missingNoCandidates: 'Not in the library, and not found on CivitAI',
  missingUse: 'Use this file',
  missingDownload: 'Download',
  missingDownloading: 'Downloading…',
  missingCandidate: 'CivitAI: {model} · {version}',
  missingCandidateHf: 'HuggingFace: {file}',
  missingByHash: 'same file',
  missingToast: 'This workflow names {count} models the library has moved or lacks: see “Missing in this workflow” in the LoRAs & Models tab.',
  missingUsed: 'Now using {name}.',
  missingFailed: 'Checking the workflow’s models failed: {error}',
  missingCivitai: 'CivitAI could not be asked: {error}',
  missingRecheck: 'Check again',
  missingKindLora: 'LoRA',
  missingKindCheckpoint: 'Checkpoint',
  missingKindEmbedding: 'Embedding',
});

// the section's rules live in styles/library.css ("missing in this workflow"), which the sidebar loads

const KIND_TEXT = { lora: 'missingKindLora', checkpoint: 'missingKindCheckpoint', embedding: 'missingKindEmbedding' };

const fold = (name) => String(name ?? '').replace(/\\/g, '/').trim().toLowerCase();
const escapeRe = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const MODEL_EXT = /\.(safetensors|ckpt|pt|pth|bin|gguf|sft|pt2)$/i;

/** `text` with the references to `oldName` (`<lora:old…>`, `embedding:old`) renamed. Pure. */
export function renameInText(text, kind, oldName, newName) {
  const value = String(text ?? '');
  if (kind === 'lora') {
    return value.replace(new RegExp(`(<lora:)${escapeRe(oldName)}(?=[:>])`, 'gi'), `$1${newName}`);
  }
  return value.replace(new RegExp(`(embedding:)${escapeRe(oldName)}(?![\\w./-])`, 'gi'), `$1${newName}`);
}

/** The value of a widget once the reference `oldName` in it names `newName` (null: no change). */
export function renamedValue(value, use, oldName, newName, kind) {
  if (use.source === 'lora_list') {
    const entries = parseStored(value);
    let index = Number.isInteger(use.entry_index) && fold(entries[use.entry_index]?.name) === fold(oldName) ? use.entry_index : -1;
    if (index < 0) index = entries.findIndex((e) => fold(e.name) === fold(oldName));
    if (index < 0) return null;
    const next = entries.map((e, i) => (i === index ? { ...e, name: newName } : e));
    return serialize(next);
  }
  if (use.source === 'dict') {
    return value && typeof value === 'object' && fold(value.lora) === fold(oldName) ? { ...value, lora: newName } : null;
  }
  if (use.source === 'text') {
    const next = renameInText(value, kind, oldName, newName);
    return next === value ? null : next;
  }
  return typeof value === 'string' && fold(value) === fold(oldName) ? newName : null;
}

/**
 * deps: {app, compat (createCompat), fetchApi(url, init) (ComfyUI's api.fetchApi), tr(key, params),
 *        toast(severity, detail, life)}.
 * Returns {check({announce, civitai}), onGraphLoaded(), mount(host) → {destroy()}, report()}.
 */
export function createMissingModels({ app, compat, fetchApi, tr, toast }) {
  let report = null;
  let withCivitai = false; // whether the report has CivitAI's candidates
  let error = '';
  let seq = 0;
  const listeners = new Set();
  const busy = new Set(); // keys of references being downloaded
  let dropped = null; // {at, parameters: Promise<string>} of the last PNG dropped on the page

  const text = (key, params) => {
    const value = tr(key, params);
    if (value !== key) return value;
    return (MISSING_TEXT[key] ?? key).replace(/\{(\w+)\}/g, (m, k) => (params?.[k] === undefined ? m : String(params[k])));
  };
  const notify = () => { for (const fn of listeners) fn(); };
  const problems = () => (report?.references || []).filter((r) => r.status === 'moved' || r.status === 'missing');

  async function post(workflow, civitai, parameters) {
    const payload = { workflow, lookup_civitai: civitai };
    if (parameters) payload.parameters = parameters;
    const res = await fetchApi(ROUTE, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(payload),
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok || body.success === false) throw new Error(body.error || `HTTP ${res.status}`);
    return body;
  }

  /** Ask about the graph on the canvas now; the newest answer wins. `announce`: toast problems;
   * `civitai`: look for download candidates (off for the workflow ComfyUI restores at start). */
  async function check({ announce = false, civitai = true } = {}) {
    const id = ++seq;
    const graph = compat.currentGraph();
    let workflow;
    try { workflow = graph?.serialize?.(); } catch { workflow = null; }
    // the parameters of a PNG dropped just before: the graph ComfyUI loaded came from it
    const fromDrop = dropped && Date.now() - dropped.at < DROP_WINDOW_MS ? dropped : null;
    dropped = null;
    if (!workflow || !Array.isArray(workflow.nodes)) { report = null; notify(); return null; }
    const parameters = fromDrop ? await fromDrop.parameters : '';
    if (id !== seq) return report;
    try {
      const body = await post(workflow, civitai, parameters);
      if (id !== seq) return report;
      report = body;
      withCivitai = civitai;
      error = '';
    } catch (err) {
      if (id !== seq) return report;
      report = null;
      error = String(err?.message || err);
    }
    notify();
    const count = problems().length;
    if (announce && count) toast?.('info', text('missingToast', { count }), 8000);
    return report;
  }

  // -- rewriting widgets ------------------------------------------------------------------------
  function nodeOf(use) {
    const root = compat.currentGraph();
    const id = /^\d+$/.test(String(use.node_id)) ? Number(use.node_id) : use.node_id;
    const graph = use.subgraph ? root?.subgraphs?.get?.(use.subgraph) : root;
    return graph?.getNodeById?.(id) || null;
  }

  function widgetOf(node, use) {
    const widgets = node?.widgets || [];
    return (use.widget && widgets.find((w) => w?.name === use.widget))
      || (Number.isInteger(use.widget_index) ? widgets[use.widget_index] : null) || null;
  }

  /** Point every use of `ref` at `newName`; returns how many widgets changed. */
  function rename(ref, newName) {
    let changed = 0;
    for (const use of ref.uses || []) {
      if (use.source === 'parameters') continue;
      const node = nodeOf(use);
      const widget = widgetOf(node, use);
      if (!widget) continue;
      const next = renamedValue(widget.value, use, ref.name, newName, ref.kind);
      if (next === null) continue;
      const old = widget.value;
      widget.value = next;
      try { widget.callback?.(next, app.canvas, node); } catch (err) { console.warn('[model library] widget callback failed', err); }
      node.onWidgetChanged?.(widget.name, next, old, widget);
      node[LIST_CONTROLLER]?.sync?.();
      changed += 1;
    }
    if (changed) {
      app.canvas?.setDirty?.(true, true);
      try { compat.captureChange(); } catch { /* not tracked */ }
    }
    return changed;
  }

  function useFile(ref, match) {
    if (rename(ref, match.name)) toast?.('success', text('missingUsed', { name: match.name }), 3000);
    return check();
  }

  async function download(ref, candidate) {
    const key = `${ref.kind}:${ref.name}`;
    busy.add(key);
    notify();
    try {
      const res = await fetchApi('/lm/download-model', {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ ...candidate.download, wait: true }),
      });
      const body = await res.json().catch(() => ({}));
      // already in the library (409) names the file too: use it
      const path = body.file_path || '';
      if (!path) throw new Error(body.error || `HTTP ${res.status}`);
      const folder = candidate.download.relative_path || '';
      let name = `${folder ? `${folder}/` : ''}${path.split('/').pop()}`;
      if ((ref.uses || []).every((u) => u.source === 'text')) name = name.replace(MODEL_EXT, '');
      if (res.ok) rename(ref, name);
    } catch (err) {
      toast?.('error', String(err?.message || err), 8000);
    } finally {
      busy.delete(key);
    }
    return check();
  }

  // -- the section ------------------------------------------------------------------------------
  function candidateLabel(c) {
    if (c.source === 'huggingface') return text('missingCandidateHf', { file: c.file_name });
    return text('missingCandidate', { model: c.model_name || c.file_name, version: c.version_name || c.file_name });
  }

  function row(ref, index) {
    const key = `${ref.kind}:${ref.name}`;
    const kind = KIND_TEXT[ref.kind] ? text(KIND_TEXT[ref.kind]) : ref.kind;
    const item = h('li', { class: `lm-missing-item lm-missing-item--${ref.status}`, dataset: { ref: String(index), status: ref.status } },
      h('div', { class: 'lm-missing-name', title: ref.name }, h('span', { class: 'lm-missing-kind', text: kind }), h('span', { text: ref.name })));
    if (ref.status === 'moved') {
      const match = ref.matches[0];
      item.append(h('div', {
        class: 'lm-missing-where', title: match.file_path,
        text: text(match.loadable ? 'missingMoved' : 'missingMovedUnloadable', { name: match.name })
          + (match.match === 'hash' ? ` (${text('missingByHash')})` : ''),
      }));
      if (match.loadable) item.append(h('button', { type: 'button', class: 'lm-btn lm-btn--xs', dataset: { missing: 'use', ref: String(index) }, text: text('missingUse') }));
    } else {
      const candidate = ref.candidates?.[0];
      item.append(h('div', { class: 'lm-missing-where', text: text(candidate ? 'missingAbsent' : 'missingNoCandidates') }));
      if (candidate) {
        item.append(h('div', { class: 'lm-missing-candidate', title: candidate.url || '', text: candidateLabel(candidate) }));
        const downloading = busy.has(key);
        item.append(h('button', {
          type: 'button', class: 'lm-btn lm-btn--xs', dataset: { missing: 'download', ref: String(index) },
          disabled: downloading, text: text(downloading ? 'missingDownloading' : 'missingDownload'),
        }));
      }
    }
    return item;
  }

  function mount(host) {
    const section = h('details', { class: 'lm-missing', open: true, dataset: { lmMissing: '1' } });
    host.append(section);

    function draw() {
      const list = problems();
      section.hidden = !list.length && !error;
      if (section.hidden) { section.replaceChildren(); return; }
      const refs = report?.references || [];
      const summary = h('summary', { class: 'lm-missing-title' }, h('span', { text: text('missingTitle') }),
        h('span', { class: 'lm-missing-count', text: String(list.length) }));
      const items = h('ul', { class: 'lm-missing-list' }, ...refs.map((r, i) => (r.status === 'moved' || r.status === 'missing' ? row(r, i) : null)).filter(Boolean));
      const notes = [];
      if (error) notes.push(h('div', { class: 'lm-missing-note', role: 'alert', text: text('missingFailed', { error }) }));
      if (report?.civitai_error) notes.push(h('div', { class: 'lm-missing-note', text: text('missingCivitai', { error: report.civitai_error }) }));
      const again = h('button', { type: 'button', class: 'lm-btn lm-btn--xs lm-missing-again', dataset: { missing: 'recheck' }, text: text('missingRecheck') });
      section.replaceChildren(summary, items, ...notes, again);
    }

    function onClick(event) {
      const button = event.target.closest?.('[data-missing]');
      if (!button || !section.contains(button)) return;
      const ref = report?.references?.[Number(button.dataset.ref)];
      const what = button.dataset.missing;
      if (what === 'recheck') check();
      else if (what === 'use' && ref?.matches?.[0]) useFile(ref, ref.matches[0]);
      else if (what === 'download' && ref?.candidates?.[0]) download(ref, ref.candidates[0]);
    }

    section.addEventListener('click', onClick);
    listeners.add(draw);
    draw();
    // opening the tab is asking: look for candidates if the last check did not
    if ((!report && !error) || (!withCivitai && problems().length)) check();
    return {
      destroy() {
        listeners.delete(draw);
        section.removeEventListener('click', onClick);
        section.remove();
      },
    };
  }

  /** document drop (capture, passive): remember a dropped PNG's `parameters` text for the
   * check of the graph ComfyUI loads from it. Never prevents, stops or throws into ComfyUI's load. */
  function onDrop(event) {
    try {
      const file = droppedPng(event.dataTransfer);
      if (!file) return;
      dropped = { at: Date.now(), parameters: pngParameters(file).catch(() => '') };
    } catch { /* not ours to fail */ }
  }

  let loads = 0;
  /** ComfyUI configured a graph: the first one is the workflow restored at start (checked
   * quietly, locally); a workflow the user opens later is announced when it lacks models. */
  function onGraphLoaded() {
    loads += 1;
    return check(loads === 1 ? { civitai: false } : { announce: true });
  }

  return { check, mount, onDrop, onGraphLoaded, report: () => report };
}
