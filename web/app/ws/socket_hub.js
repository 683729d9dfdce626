/**
 * The one owner of our WebSockets: connects to the progress sockets, reconnects with
 * back-off, and dispatches each JSON message to the handlers registered for its `type`.
 */

/**
 * `paths` are socket paths relative to `base` ('ws/fetch-progress'), the URL of the server's
 * root as the page sees it (the page's `data-root` resolved: '/', or '/models/' behind a proxy).
 * Handlers registered with on('*') see every message.
 */
export function createSocketHub({ paths = ['ws/fetch-progress', 'ws/init-progress'], base = new URL('/', location.href).href } = {}) {
  const handlers = new Map();
  const sockets = new Map();
  const statusListeners = new Set();
  let closed = false;

  function wsUrl(path) {
    // a leading '/' would leave the proxy's sub-path: every socket path is taken relative to base
    const url = new URL(String(path).replace(/^\/+/, ''), base);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    return url.href;
  }

  function dispatch(message) {
    if (!message || typeof message.type !== 'string') return;
    for (const key of [message.type, '*']) {
      for (const fn of [...(handlers.get(key) || [])]) {
        try { fn(message); } catch (err) { console.warn('[lm] socket handler failed', err); }
      }
    }
  }

  function notifyStatus() {
    const open = [...sockets.values()].some((s) => s.ws && s.ws.readyState === WebSocket.OPEN);
    for (const fn of [...statusListeners]) fn(open);
  }

  function connect(path) {
    const entry = sockets.get(path) || { ws: null, attempts: 0, timer: 0 };
    sockets.set(path, entry);
    if (closed) return;
    let ws;
    try { ws = new WebSocket(wsUrl(path)); } catch { scheduleReconnect(path); return; }
    entry.ws = ws;
    ws.addEventListener('open', () => { entry.attempts = 0; notifyStatus(); });
    ws.addEventListener('message', (event) => {
      if (typeof event.data !== 'string') return;
      let message;
      try { message = JSON.parse(event.data); } catch { return; }
      dispatch(message);
    });
    ws.addEventListener('close', () => { notifyStatus(); scheduleReconnect(path); });
    ws.addEventListener('error', () => { /* close follows; reconnect happens there */ });
  }

  function scheduleReconnect(path) {
    const entry = sockets.get(path);
    if (closed || !entry) return;
    entry.attempts += 1;
    const delay = Math.min(30000, 500 * 2 ** Math.min(entry.attempts, 6)) * (0.75 + Math.random() * 0.5);
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => connect(path), delay);
  }

  return {
    start() { closed = false; for (const path of paths) if (!sockets.has(path)) connect(path); return this; },
    /** Open one more socket (e.g. `ws/download-progress?id=...`); returns a closer. */
    open(path) {
      if (!sockets.has(path)) connect(path);
      return () => {
        const entry = sockets.get(path);
        if (!entry) return;
        sockets.delete(path);
        clearTimeout(entry.timer);
        if (entry.ws) entry.ws.close(1000);
      };
    },
    on(type, fn) {
      if (!handlers.has(type)) handlers.set(type, new Set());
      handlers.get(type).add(fn);
      return () => handlers.get(type).delete(fn);
    },
    onStatus(fn) { statusListeners.add(fn); return () => statusListeners.delete(fn); },
    /** Deliver a message as if it came from a socket (used when a host relays events). */
    dispatch,
    close() {
      closed = true;
      for (const entry of sockets.values()) { clearTimeout(entry.timer); if (entry.ws) entry.ws.close(1000); }
      sockets.clear();
    },
  };
}
