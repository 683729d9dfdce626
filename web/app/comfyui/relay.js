/**
 * The event relay: our socket messages arrive on ComfyUI's socket as `lm.<type>` events and
 * are re-dispatched here with the socket hub's interface (`on(type, fn)` → unsubscribe), so the
 * shared panel listens the same way inside ComfyUI as on the full page (ws/socket_hub.js).
 * It opens no socket of its own and must not import ComfyUI's scripts: `api` is passed to connect().
 */

/** Socket events the backend forwards as `lm.<type>`. */
export const EVENT_TYPES = Object.freeze([
  'models_changed', 'init_progress', 'hash_progress', 'civitai_fetch_progress',
  'auto_organize_progress', 'download_progress',
]);

/** Returns {on(type, fn), dispatch(message), connect(api)}; `on('*', fn)` hears every type. */
export function createRelay() {
  const handlers = new Map();

  function on(type, fn) {
    if (!handlers.has(type)) handlers.set(type, new Set());
    handlers.get(type).add(fn);
    return () => handlers.get(type).delete(fn);
  }

  function dispatch(message) {
    for (const key of [message.type, '*']) {
      // a copy: a handler may unsubscribe (or subscribe) while we iterate
      for (const fn of [...(handlers.get(key) || [])]) {
        try { fn(message); } catch (err) { console.warn('[model library] event handler failed', err); }
      }
    }
  }

  /** Listen to ComfyUI's socket (`api.addEventListener`). Call it from setup(): ComfyUI drops a
   * custom message nobody listens to yet, so this must run before the first one can arrive. */
  function connect(api) {
    for (const type of EVENT_TYPES) {
      api.addEventListener(`lm.${type}`, (event) => dispatch({ ...(event.detail || {}), type }));
    }
  }

  return { on, dispatch, connect };
}
