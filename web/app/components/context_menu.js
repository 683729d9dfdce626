/**
 * One floating context menu per view: opened at a point or under an anchor with a list of
 * items, navigable with arrows/Enter/Esc; reports the chosen item id through a callback.
 * It stays inside the viewport and inside `bounds()` ({left, right}: a sidebar keeps its
 * menus off the host's icon bar); `root` must not sit in a contained or transformed box
 * (position: fixed would be relative to it), which is why hosts hand in an overlay layer.
 */
import { h, closestIn, placeBeside } from './dom.js';
import { createIcon } from './icon.js';

/** options: {t, bounds()?: {left, right} | null}. */
export function createContextMenu(root, { t, bounds = null } = {}) {
  const menu = h('div', { class: 'lm-menu', role: 'menu', hidden: true, tabindex: '-1' });
  root.append(menu);
  let onSelect = null;
  let returnFocus = null;

  function items() { return [...menu.querySelectorAll('[role="menuitem"]:not([disabled])')]; }

  function close({ restoreFocus = true } = {}) {
    if (menu.hidden) return;
    menu.hidden = true;
    menu.replaceChildren();
    onSelect = null;
    document.removeEventListener('pointerdown', onOutside, true);
    window.removeEventListener('blur', onBlur);
    if (restoreFocus && returnFocus && returnFocus.isConnected) returnFocus.focus({ preventScroll: true });
    returnFocus = null;
  }

  function onOutside(event) { if (!menu.contains(event.target)) close({ restoreFocus: false }); }
  function onBlur() { close({ restoreFocus: false }); }

  /** entries: [{id, label, icon, danger, disabled} | {separator: true}]. */
  function open({ entries, x, y, anchor, label, select }) {
    close({ restoreFocus: false });
    returnFocus = anchor || document.activeElement;
    onSelect = select;
    menu.setAttribute('aria-label', label || (t ? t('card.actions') : 'Actions'));
    menu.replaceChildren(...entries.map((entry) => (entry.separator
      ? h('div', { class: 'lm-menu-sep', role: 'separator' })
      : h('button', {
        type: 'button', role: 'menuitem', tabindex: '-1', class: `lm-menu-item${entry.danger ? ' lm-menu-item--danger' : ''}`,
        dataset: { menuId: entry.id }, disabled: Boolean(entry.disabled),
      }, createIcon(entry.icon || 'info', { size: 16 }), h('span', { text: entry.label }),
      entry.hint ? h('span', { class: 'lm-menu-hint', text: entry.hint }) : null))));
    menu.hidden = false;
    const point = x !== undefined && y !== undefined;
    placeBeside(menu, point || !anchor ? { x: x ?? 8, y: y ?? 8 } : anchor, {
      bounds: typeof bounds === 'function' ? bounds() : bounds,
      // under a button the menu's right edge meets the button's; at a pointer it opens rightwards
      align: point ? 'start' : 'end',
    });
    const first = items()[0];
    if (first) first.focus();
    document.addEventListener('pointerdown', onOutside, true);
    window.addEventListener('blur', onBlur);
  }

  function onClick(event) {
    const item = closestIn(event.target, '[data-menu-id]', menu);
    if (!item || item.disabled) return;
    const select = onSelect;
    close();
    if (select) select(item.dataset.menuId);
  }

  function onKey(event) {
    const list = items();
    const i = list.indexOf(document.activeElement);
    if (event.key === 'ArrowDown') { event.preventDefault(); list[(i + 1) % list.length]?.focus(); }
    else if (event.key === 'ArrowUp') { event.preventDefault(); list[(i - 1 + list.length) % list.length]?.focus(); }
    else if (event.key === 'Home') { event.preventDefault(); list[0]?.focus(); }
    else if (event.key === 'End') { event.preventDefault(); list[list.length - 1]?.focus(); }
    else if (event.key === 'Escape' || event.key === 'Tab') { event.preventDefault(); event.stopPropagation(); close(); }
  }

  menu.addEventListener('click', onClick);
  menu.addEventListener('keydown', onKey);

  return {
    open,
    close,
    get isOpen() { return !menu.hidden; },
    update() {},
    destroy() { close({ restoreFocus: false }); menu.remove(); },
  };
}
