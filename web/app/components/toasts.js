/**
 * Toast notifications (info, success, error) with an optional action button such as Undo.
 * Owns its container and timers; text is set with textContent only.
 */
import { h, closestIn } from './dom.js';
import { createIcon } from './icon.js';

const ICONS = { info: 'info', success: 'check', error: 'alert', warning: 'alert' };

export function createToasts(root, { t }) {
  const region = h('div', { class: 'lm-toasts', role: 'region', 'aria-label': t('toast.region') });
  const live = h('div', { class: 'lm-sr-only', 'aria-live': 'polite', role: 'status' });
  root.append(region, live);
  const timers = new Map();
  const actions = new WeakMap();
  let nextId = 1;

  function dismiss(el) {
    if (!el || !el.isConnected) return;
    clearTimeout(timers.get(el));
    timers.delete(el);
    el.classList.add('lm-toast--leaving');
    setTimeout(() => el.remove(), 180);
  }

  function onClick(event) {
    const button = closestIn(event.target, 'button[data-toast]', region);
    if (!button) return;
    const el = button.closest('.lm-toast');
    if (button.dataset.toast === 'action') {
      const action = actions.get(el);
      if (action) Promise.resolve(action.run()).catch(() => {});
    }
    dismiss(el);
  }
  region.addEventListener('click', onClick);

  /** Show a toast; returns a handle {dismiss, update(text)}. */
  function show(message, { kind = 'info', action = null, timeout } = {}) {
    const duration = timeout ?? (action ? 8000 : kind === 'error' ? 7000 : 3500);
    const text = h('div', { class: 'lm-toast-text', text: message });
    const el = h('div', { class: `lm-toast lm-toast--${kind}`, dataset: { toastId: String(nextId++) }, role: kind === 'error' ? 'alert' : null },
      createIcon(ICONS[kind] || 'info', { size: 16 }),
      text,
      action ? h('button', { type: 'button', class: 'lm-toast-action', dataset: { toast: 'action' }, text: action.label }) : null,
      h('button', { type: 'button', class: 'lm-toast-close lm-icon-btn', dataset: { toast: 'close' }, 'aria-label': t('common.close') },
        createIcon('close', { size: 14 })));
    if (action) actions.set(el, action);
    region.append(el);
    while (region.children.length > 5) dismiss(region.firstElementChild);
    if (kind !== 'error') live.textContent = message;
    if (duration > 0) timers.set(el, setTimeout(() => dismiss(el), duration));
    return { dismiss: () => dismiss(el), update: (next) => { text.textContent = next; } };
  }

  return {
    show,
    info: (m, o) => show(m, { ...o, kind: 'info' }),
    success: (m, o) => show(m, { ...o, kind: 'success' }),
    error: (m, o) => show(m, { ...o, kind: 'error' }),
    update() {},
    destroy() {
      region.removeEventListener('click', onClick);
      for (const timer of timers.values()) clearTimeout(timer);
      region.remove();
      live.remove();
    },
  };
}
