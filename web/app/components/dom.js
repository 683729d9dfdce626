/**
 * Tiny DOM builder used by every component: elements, attributes and text, never HTML strings.
 * It must stay free of state and of fetches; components own behaviour, this only builds nodes.
 */

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
