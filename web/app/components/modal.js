/**
 * Modal dialogs on the native <dialog> element (focus containment, Esc, inert background),
 * plus confirm and prompt helpers. Each call creates its dialog and removes it on close.
 */
import { h, closestIn } from './dom.js';
import { createIcon } from './icon.js';

let counter = 0;

/**
 * Open a modal. `content` is a Node; `actions` [{id, label, kind: 'primary'|'danger'|'ghost'}].
 * `onAction(id, modal)` returns false to keep the dialog open. Resolves `closed` with the result.
 */
export function openModal({ host = document.body, title, content, actions = [], size = 'md', className = '', t, onAction, onClose }) {
  counter += 1;
  const titleId = `lm-modal-title-${counter}`;
  const footer = h('footer', { class: 'lm-modal-footer' },
    actions.map((a) => h('button', {
      type: 'button', class: `lm-btn lm-btn--${a.kind || 'ghost'}`, dataset: { modalAction: a.id },
      text: a.label, disabled: Boolean(a.disabled),
    })));
  const dialog = h('dialog', { class: `lm-modal lm-modal--${size} ${className}`.trim(), 'aria-labelledby': titleId },
    h('header', { class: 'lm-modal-header' },
      h('h2', { id: titleId, class: 'lm-modal-title', text: title }),
      h('button', { type: 'button', class: 'lm-icon-btn', dataset: { modalAction: 'close' }, 'aria-label': t ? t('common.close') : 'Close' },
        createIcon('close'))),
    h('div', { class: 'lm-modal-body' }, content),
    actions.length ? footer : null);
  host.append(dialog);

  let result = null;
  let resolveClosed;
  const closed = new Promise((resolve) => { resolveClosed = resolve; });

  const modal = {
    dialog,
    footer,
    closed,
    setTitle(text) { dialog.querySelector('.lm-modal-title').textContent = text; },
    button: (id) => footer.querySelector(`[data-modal-action="${id}"]`),
    close(value = null) { result = value; if (dialog.open) dialog.close(); },
  };

  async function onClick(event) {
    if (event.target === dialog) { modal.close(null); return; }
    const button = closestIn(event.target, '[data-modal-action]', dialog);
    if (!button) return;
    const id = button.dataset.modalAction;
    if (id === 'close') { modal.close(null); return; }
    if (!onAction) { modal.close(id); return; }
    button.disabled = true;
    try {
      const keep = await onAction(id, modal);
      if (keep !== false) modal.close(id);
    } finally {
      button.disabled = false;
    }
  }

  dialog.addEventListener('click', onClick);
  dialog.addEventListener('close', () => {
    dialog.removeEventListener('click', onClick);
    dialog.remove();
    if (onClose) onClose(result);
    resolveClosed(result);
  });
  dialog.showModal();
  const autofocus = dialog.querySelector('[autofocus]');
  if (autofocus) autofocus.focus();
  return modal;
}

/** Ask yes/no; resolves true when confirmed. */
export async function confirmDialog({ t, title, message, confirmLabel, danger = false, host }) {
  const modal = openModal({
    host, t, title, size: 'sm',
    content: h('p', { class: 'lm-modal-text', text: message }),
    actions: [
      { id: 'cancel', label: t('common.cancel') },
      { id: 'ok', label: confirmLabel || t('common.ok'), kind: danger ? 'danger' : 'primary' },
    ],
  });
  modal.button('ok').focus();
  return (await modal.closed) === 'ok';
}

/** Ask for a line of text; resolves the trimmed value or null. `validate` returns an error text. */
export async function promptDialog({ t, title, label, value = '', confirmLabel, validate, host }) {
  const input = h('input', { class: 'lm-input', type: 'text', value, autofocus: true, spellcheck: 'false', 'aria-label': label });
  const error = h('p', { class: 'lm-field-error', role: 'alert' });
  const form = h('form', { class: 'lm-form' }, h('label', { class: 'lm-field' }, h('span', { class: 'lm-field-label', text: label }), input), error);
  let submitted = null;
  const modal = openModal({
    host, t, title, size: 'sm', content: form,
    actions: [{ id: 'cancel', label: t('common.cancel') }, { id: 'ok', label: confirmLabel || t('common.ok'), kind: 'primary' }],
    onAction(id) {
      if (id !== 'ok') return true;
      const text = input.value.trim();
      const problem = validate ? validate(text) : (text ? '' : t('common.required'));
      if (problem) { error.textContent = problem; input.focus(); return false; }
      submitted = text;
      return true;
    },
  });
  form.addEventListener('submit', (event) => { event.preventDefault(); modal.button('ok').click(); });
  input.select();
  await modal.closed;
  return submitted;
}
