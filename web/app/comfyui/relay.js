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

  /** Listen to ComfyUI's socket (`api.addEventListener`), then ask the server for our events. */
  function connect(api) {
    for (const type of EVENT_TYPES) {
      api.addEventListener(`lm.${type}`, (event) => dispatch({ ...(event.detail || {}), type }));
    }
    askForEvents(api);
  }

  return { on, dispatch, connect };
}

/**
 * Ask the server to send our `lm.*` events to this tab's socket; call it once the listeners are
 * in place. The server sends them only to tabs that asked (ComfyUI's socket is open before
 * extensions load, and its frontend reports each message type nobody listens to as an error) and
 * forgets a socket once it closes: a reconnected socket asks again. The client id is the socket's
 * (ComfyUI's first `status` message brings it, usually before extensions load).
 */
export function askForEvents(api) {
  const ask = () => {
    if (!api.clientId) return false;
    api.fetchApi('/lm/events/listen', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ client_id: api.clientId }),
    }).catch(() => {}); // offline: the reconnect asks again
    return true;
  };
  api.addEventListener('reconnected', ask);
  if (!ask()) {
    const onStatus = () => { if (ask()) api.removeEventListener('status', onStatus); };
    api.addEventListener('status', onStatus);
  }
}
