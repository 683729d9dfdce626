/**
 * Messages shown as ComfyUI toasts: plain notices, the toasts interface the shared panel
 * expects, and the outcome of long operations reported on ComfyUI's socket.
 * Owns no DOM (ComfyUI draws its toasts) and must not import ComfyUI's scripts: `app` and the
 * translator come in as deps.
 */

// the panel's kinds → ComfyUI's (PrimeVue) severities
const SEVERITY = Object.freeze({ info: 'info', success: 'success', error: 'error', warning: 'warn' });

/** deps: {app, tr}. Returns {toast(severity, detail, life), forPanel(getFallback), reportProgress(message)}. */
export function createComfyToasts({ app, tr }) {
  // looked up per call: extensionManager only exists from ComfyUI's setup() on
  const store = () => app.extensionManager?.toast;

  /** Show one ComfyUI toast (the console when there is no toast store); returns the message,
   * which is also the handle ComfyUI's `remove` takes. */
  function toast(severity, detail, life = 3500) {
    const target = store();
    const message = { severity, summary: tr('title'), detail, ...(life ? { life } : {}) };
    if (target && typeof target.add === 'function') target.add(message);
    else console.info(`[model library] ${detail}`);
    return message;
  }

  /** The toasts interface of components/toasts.js, shown as ComfyUI toasts. Toasts carrying an
   * action (Undo) need a button ComfyUI's toasts lack: those go to the panel's own `fallback`. */
  function forPanel(getFallback) {
    function show(text, { kind = 'info', action = null, timeout } = {}) {
      const fallback = getFallback();
      if (action && fallback) return fallback.show(text, { kind, action, timeout });
      const life = timeout === 0 ? 0 : timeout ?? (kind === 'error' ? 7000 : 3500);
      let message = toast(SEVERITY[kind] || 'info', text, life);
      return {
        dismiss: () => store()?.remove?.(message),
        update(next) {
          store()?.remove?.(message);
          message = toast(SEVERITY[kind] || 'info', next, life);
        },
      };
    }
    return {
      show,
      info: (m, o) => show(m, { ...o, kind: 'info' }),
      success: (m, o) => show(m, { ...o, kind: 'success' }),
      error: (m, o) => show(m, { ...o, kind: 'error' }),
      update() {},
      destroy() {},
    };
  }

  /** A toast for the end of a long operation (socket message `{type, status, ...}`): the sidebar
   * may be closed meanwhile, so ComfyUI's toasts are the one place the outcome shows. */
  function reportProgress(message) {
    if (message.type === 'civitai_fetch_progress') {
      if (message.status === 'completed') toast('success', tr('fetchDone', { updated: message.updated ?? 0, total: message.total ?? 0 }), 5000);
      else if (message.status === 'error') toast('error', tr('fetchFailed', { error: message.error || '' }), 8000);
    } else if (message.type === 'download_progress') {
      const name = message.file_name || message.model_name || message.name || '';
      if (message.status === 'completed') toast('success', tr('downloadDone', { name }), 5000);
      else if (message.status === 'failed' || message.status === 'error') toast('error', tr('downloadFailed', { name }), 8000);
    } else if (message.type === 'auto_organize_progress' && message.status === 'completed') {
      toast('success', tr('organizeDone'), 5000);
    }
  }

  return { toast, forPanel, reportProgress };
}
