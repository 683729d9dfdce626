/**
 * The "scanning your library" view shown while the server is cold: follows init_progress
 * for this page's model type and disappears once the index is ready.
 */

/** root: the server-rendered #initializing section; deps: {events, t, modelType, onReady()} */
export function createInitOverlay(root, deps) {
  const { events, t } = deps;
  const bar = root.querySelector('progress');
  const text = root.querySelector('[data-init-text]') || root.querySelector('p');
  const stageKeys = { loading_cache: 'progress.stage_loading_cache', scanning: 'progress.stage_scanning', hashing: 'progress.stage_hashing', ready: 'progress.stage_ready' };
  let done = false;

  function finish() {
    if (done) return;
    done = true;
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

  return {
    finish,
    update() {},
    destroy() { unsub(); },
  };
}
