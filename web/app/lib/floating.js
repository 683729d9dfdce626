/**
 * Where a floating element (menu, popover) goes: next to its anchor, inside the viewport and
 * inside optional horizontal bounds (a sidebar's menus stay off the host's icon bar). Pure
 * arithmetic on rectangles; the components measure and apply the result.
 */

/**
 * anchor: {left, top, right, bottom} (a point is a zero-size rect); size: {width, height};
 * viewport: {width, height}; bounds: {left, right} limiting x (default: the viewport);
 * align: 'start' (left edges meet) or 'end' (right edges meet); margin from the edges; gap
 * between anchor and element. Returns {left, top, maxWidth, maxHeight}: the element fits when
 * it is no larger than maxWidth × maxHeight (callers set both so a big menu scrolls instead).
 */
export function placeFloating({ anchor, size, viewport, bounds = null, align = 'start', margin = 8, gap = 4 }) {
  const minX = Math.max(margin, bounds && Number.isFinite(bounds.left) ? bounds.left : margin);
  const maxX = Math.min(viewport.width - margin, bounds && Number.isFinite(bounds.right) ? bounds.right : viewport.width - margin);
  const maxWidth = Math.max(0, maxX - minX);
  const width = Math.min(size.width, maxWidth);
  const preferred = align === 'end' ? anchor.right - width : anchor.left;
  const left = Math.round(Math.max(minX, Math.min(preferred, maxX - width)));

  const below = viewport.height - margin - (anchor.bottom + gap);
  const above = anchor.top - gap - margin;
  let top;
  let maxHeight;
  if (size.height <= below || below >= above) {
    top = anchor.bottom + gap;
    maxHeight = Math.max(0, below);
  } else {
    maxHeight = Math.max(0, above);
    top = anchor.top - gap - Math.min(size.height, maxHeight);
  }
  return { left, top: Math.round(Math.max(margin, top)), maxWidth: Math.floor(maxWidth), maxHeight: Math.floor(maxHeight) };
}

/** The rectangle of a DOMRect-like value as a plain object (also for points {x, y}). */
export function rectOf(value) {
  if (value && Number.isFinite(value.x) && !Number.isFinite(value.left)) {
    return { left: value.x, right: value.x, top: value.y, bottom: value.y };
  }
  return { left: value.left, right: value.right, top: value.top, bottom: value.bottom };
}
