/**
 * Tiny DOM builder used by every component: elements, attributes and text, never HTML strings,
 * and the one function that puts a floating element (menu, popover) beside its anchor.
 * It must stay free of state and of fetches; components own behaviour, this only builds nodes.
 */
import { placeFloating, rectOf } from '../lib/floating.js';

const PROPERTY_KEYS = new Set(['value', 'checked', 'disabled', 'hidden', 'selected', 'indeterminate', 'open']);

/** Build an element: `h('button', {class: 'x', text: 'Go', 'aria-label': 'Go'}, child...)`. */
export function h(tag, props = null, ...children) {
  const el = document.createElement(tag);
  if (props) applyProps(el, props);
  appendChildren(el, children);
  return el;
}

export function applyProps(el, props) {
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = String(value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'style') Object.assign(el.style, value);
    else if (PROPERTY_KEYS.has(key)) el[key] = value;
    else if (value === false) continue;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  return el;
}

export function appendChildren(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) appendChildren(el, child);
    else if (child instanceof Node) el.append(child);
    else el.append(document.createTextNode(String(child)));
  }
  return el;
}

/** Replace every child of `el` by `children`. */
export function setChildren(el, ...children) {
  el.replaceChildren();
  return appendChildren(el, children);
}

/** Closest ancestor (or self) of an event target matching `selector`, inside `root`. */
export function closestIn(target, selector, root) {
  if (!(target instanceof Element)) return null;
  const found = target.closest(selector);
  return found && root.contains(found) ? found : null;
}

/**
 * Show `el` (position: fixed) beside `anchor` (an element, a DOMRect or a point {x, y}) inside
 * the viewport and `bounds` ({left, right}); it scrolls when it is larger than the room left.
 * Applies left/top/max-width/max-height through el.style (allowed by the pages' CSP).
 */
export function placeBeside(el, anchor, { bounds = null, align = 'start', gap = 4 } = {}) {
  const box = rectOf(anchor instanceof Element ? anchor.getBoundingClientRect() : anchor);
  el.style.maxWidth = '';
  el.style.maxHeight = '';
  // layout size, not getBoundingClientRect: an opening animation's scale() must not count
  const spot = placeFloating({
    anchor: box, size: { width: el.offsetWidth, height: el.offsetHeight },
    viewport: { width: document.documentElement.clientWidth || window.innerWidth, height: window.innerHeight },
    bounds, align, gap,
  });
  el.style.left = `${spot.left}px`;
  el.style.top = `${spot.top}px`;
  el.style.maxWidth = `${spot.maxWidth}px`;
  el.style.maxHeight = `${spot.maxHeight}px`;
}
