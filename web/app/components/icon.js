/**
 * Inline SVG icons built with createElementNS from a small table of stroke paths.
 * Decorative only (aria-hidden); buttons carry their own accessible labels.
 */

const SVG_NS = 'http://www.w3.org/2000/svg';

const PATHS = {
  logo: 'M4 4h4v16H4z M10 4h4v16h-4z M16.5 4.5l3.5 1-3.6 15-3.4-1z',
  search: 'M11 4a7 7 0 1 0 0 14a7 7 0 1 0 0-14z M20 20l-4.2-4.2',
  filter: 'M3 5h18l-7 8v6l-4 2v-8z',
  sort: 'M7 4v16 M3 16l4 4 4-4 M17 20V4 M13 8l4-4 4 4',
  settings: 'M4 6h9 M17 6h3 M15 4v4 M4 12h3 M11 12h9 M9 10v4 M4 18h11 M19 18h1 M17 16v4',
  star: 'M12 3.5l2.7 5.5 6 .9-4.35 4.25 1 6L12 17.3l-5.35 2.85 1-6L3.3 9.9l6-.9z',
  copy: 'M9 9h11v11H9z M5 15H4V4h11v1',
  more: 'M5 12h.01 M12 12h.01 M19 12h.01',
  close: 'M6 6l12 12 M18 6L6 18',
  check: 'M5 12l5 5L20 7',
  folder: 'M3 6.5A1.5 1.5 0 0 1 4.5 5H9l2 2h8.5A1.5 1.5 0 0 1 21 8.5v9a1.5 1.5 0 0 1-1.5 1.5h-15A1.5 1.5 0 0 1 3 17.5z',
  download: 'M12 4v11 M7 10l5 5 5-5 M5 20h14',
  trash: 'M4 7h16 M10 11v6 M14 11v6 M6 7l1 13h10l1-13 M9 7V4h6v3',
  refresh: 'M20 11a8 8 0 1 0-2.3 5.7 M20 4v7h-7',
  wand: 'M4 20L15 9 M13 7l4 4 M19 3v4 M17 5h4 M7 3v3 M5.5 4.5h3',
  layers: 'M8 8h12v12H8z M4 16V4h12',
  select: 'M4 4h16v16H4z M8 12l3 3 5-6',
  image: 'M4 5h16v14H4z M4 16l5-5 4 4 3-3 4 4 M15 9h.01',
  chevronDown: 'M6 9l6 6 6-6',
  chevronRight: 'M9 6l6 6-6 6',
  external: 'M14 4h6v6 M20 4l-9 9 M18 14v6H4V6h6',
  edit: 'M4 20h4L19 9l-4-4L4 16z',
  move: 'M3 6.5A1.5 1.5 0 0 1 4.5 5H9l2 2h8.5A1.5 1.5 0 0 1 21 8.5v9a1.5 1.5 0 0 1-1.5 1.5h-15A1.5 1.5 0 0 1 3 17.5z M9 13h7 M13 10l3 3-3 3',
  eyeOff: 'M3 3l18 18 M10.6 6.1A9.7 9.7 0 0 1 12 6c5 0 9 6 9 6a16 16 0 0 1-2.4 3 M6.6 7.6C4.3 9.2 3 12 3 12s4 6 9 6a9 9 0 0 0 4.4-1.2 M9.9 9.9a3 3 0 0 0 4.2 4.2',
  upload: 'M12 20V9 M7 14l5-5 5 5 M5 4h14',
  pause: 'M8 5v14 M16 5v14',
  play: 'M7 4.5l12 7.5-12 7.5z',
  stop: 'M6 6h12v12H6z',
  clock: 'M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18z M12 7v5l3 2',
  info: 'M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18z M12 11v6 M12 7.5h.01',
  tag: 'M3 12V4h8l10 10-8 8z M7.5 8h.01',
  plus: 'M12 5v14 M5 12h14',
  alert: 'M12 3.5L2.5 20h19z M12 10v4 M12 17h.01',
  undo: 'M9 14L4 9l5-5 M4 9h10a6 6 0 0 1 0 12h-3',
  keyboard: 'M3 6h18v12H3z M7 10h.01 M11 10h.01 M15 10h.01 M7 14h10',
  list: 'M4 5h3v3H4z M4 10.5h3v3H4z M4 16h3v3H4z M10 6.5h10 M10 12h10 M10 17.5h10',
  grid: 'M4 4h7v7H4z M13 4h7v7h-7z M4 13h7v7H4z M13 13h7v7h-7z',
};

/** An `<svg>` icon; `name` is a key of the table above. */
export function createIcon(name, { size = 18, className = 'lm-icon' } = {}) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('width', String(size));
  svg.setAttribute('height', String(size));
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('class', `${className} lm-icon-${name}`);
  const path = document.createElementNS(SVG_NS, 'path');
  path.setAttribute('d', PATHS[name] || PATHS.info);
  svg.append(path);
  return svg;
}

export const ICON_NAMES = Object.freeze(Object.keys(PATHS));
