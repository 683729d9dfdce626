/**
 * The floating model card shown beside a hovered entry (ComfyUI's model pickers, the loader's
 * suggestions): preview, name, base model, trigger words. One card per page, kept inside the
 * viewport; it owns only its element and does no fetching (callers pass the card).
 */

const CARD_WIDTH = 240;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** deps: {tr(key, params)}. Returns {show(anchor, card, name), hide(), element()}. */
export function createPreviewCard({ tr }) {
  let root = null;
  let shownFor = null;

  function ensure() {
    if (!root) {
      root = el('div', 'lm-node-preview');
      root.setAttribute('role', 'tooltip');
      root.dataset.lmPreview = '1';
      root.hidden = true;
      document.body.append(root);
    }
    return root;
  }

  function place(anchor) {
    const box = anchor.getBoundingClientRect();
    const width = root.offsetWidth || CARD_WIDTH;
    const height = root.offsetHeight || 200;
    let left = box.right + 8;
    if (left + width > window.innerWidth - 4) left = Math.max(4, box.left - width - 8);
    const top = Math.max(4, Math.min(box.top, window.innerHeight - height - 4));
    root.style.left = `${Math.round(left)}px`;
    root.style.top = `${Math.round(top)}px`;
  }

  /** Show `card` (a lookup card) beside `anchor`; `name` is what the picker lists. */
  function show(anchor, card, name) {
    ensure();
    shownFor = anchor;
    const children = [];
    const url = card?.preview_url;
    if (url) {
      const media = card.preview_type === 'video' ? el('video', 'lm-node-preview-media') : el('img', 'lm-node-preview-media');
      if (media.tagName === 'VIDEO') { media.muted = true; media.autoplay = true; media.loop = true; media.playsInline = true; }
      else { media.alt = ''; media.decoding = 'async'; }
      media.src = url;
      media.addEventListener('load', () => { if (shownFor === anchor) place(anchor); }, { once: true });
      children.push(media);
    } else {
      children.push(el('div', 'lm-node-preview-empty', tr('noPreview')));
    }
    const body = el('div', 'lm-node-preview-body');
    body.append(el('div', 'lm-node-preview-name', card?.model_name || name));
    const meta = el('div', 'lm-node-preview-meta');
    meta.append(el('span', 'lm-node-preview-base', card?.base_model || tr('unknownBase')));
    if (card?.usage_count) meta.append(el('span', 'lm-node-preview-usage', tr('usedTimes', { count: card.usage_count })));
    body.append(meta);
    const words = Array.isArray(card?.trigger_words) ? card.trigger_words : [];
    if (words.length) {
      const list = el('div', 'lm-node-preview-words');
      for (const word of words.slice(0, 12)) list.append(el('span', 'lm-node-preview-word', word));
      body.append(list);
    }
    if (!card) body.append(el('div', 'lm-node-preview-missing', tr('notInLibrary')));
    children.push(body);
    root.replaceChildren(...children);
    root.hidden = false;
    place(anchor);
  }

  function hide() {
    shownFor = null;
    if (root) { root.hidden = true; root.replaceChildren(); }
  }

  return { show, hide, element: () => root, shownFor: () => shownFor };
}
