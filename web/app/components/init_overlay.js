/**
 * The "scanning your library" view shown while the server is cold: follows init_progress
 * for this page's model type and disappears once the index is ready.
 */

/**
 * root: the server-rendered #initializing section; deps: {events, api, t, modelType, onReady()}.
 * The socket replays only the server's last init message (maybe another type's), so readiness
 * is also polled from the health check until this type reports ready.
 */
export function createInitOverlay(root, deps) {
  const { events, t } = deps;
  const bar = root.querySelector('progress');
  const text = root.querySelector('[data-init-text]') || root.querySelector('p');
  const stageKeys = { loading_cache: 'progress.stage_loading_cache', scanning: 'progress.stage_scanning', hashing: 'progress.stage_hashing', ready: 'progress.stage_ready' };
  let done = false;

  function finish() {
    if (done) return;
    done = true;
    clearTimeout(pollTimer);
    root.classList.add('lm-init--done');
    setTimeout(() => { root.hidden = true; }, 250);
    deps.onReady();
  }

  const unsub = events.on('init_progress', (msg) => {
    if (msg.model_type && msg.model_type !== deps.modelType) return;
    if (bar && Number.isFinite(msg.progress)) bar.value = msg.progress;
    if (text) {
      const stage = t(stageKeys[msg.stage] || 'progress.stage_scanning');
      text.textContent = msg.total ? `${stage} ${msg.scanned ?? 0} / ${msg.total}` : stage;
    }
    if (msg.ready || msg.stage === 'ready') finish();
  });

  let pollTimer = 0;
  async function poll() {
    if (done || !deps.api) return;
    try {
      const health = await deps.api.health();
      if (health.ready && health.ready[deps.modelType]) { finish(); return; }
    } catch { /* the server may be restarting; keep polling */ }
    pollTimer = setTimeout(poll, 1000);
  }
  pollTimer = setTimeout(poll, 500);

  return {
    finish,
    update() {},
    destroy() { unsub(); clearTimeout(pollTimer); },
  };
}
