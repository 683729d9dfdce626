/**
 * Builds and fills the card element the virtualised grid recycles. Building happens once per
 * pooled slot; filling only touches what differs, so scrolling never rebuilds subtrees.
 */
import { h } from './dom.js';
import { createIcon } from './icon.js';
import { shouldBlur } from '../lib/nsfw.js';
import { displayName } from '../lib/model_text.js';
import { wrapPieces } from '../lib/format.js';

/** The name as text with <wbr> break points (its textContent stays the plain name). */
function setName(el, label) {
  const pieces = wrapPieces(label);
  const nodes = [];
  pieces.forEach((piece, i) => { if (i) nodes.push(document.createElement('wbr')); nodes.push(document.createTextNode(piece)); });
  el.replaceChildren(...nodes);
}

/** A blank card slot (no listeners: the grid delegates every event). */
export function buildCard({ t, compact = false, draggable = false }) {
  return h('article', { class: 'lm-card lm-card--loading', role: 'listitem', tabindex: '-1', draggable: draggable ? 'true' : null },
    h('div', { class: 'lm-card-media' },
      h('img', { class: 'lm-card-img', alt: '', draggable: 'false', decoding: 'async', loading: 'lazy', hidden: true }),
      h('video', { class: 'lm-card-video', muted: true, loop: true, playsinline: true, preload: 'metadata', hidden: true }),
      h('div', { class: 'lm-card-placeholder', hidden: true }, createIcon('image', { size: 32 }))),
    h('div', { class: 'lm-card-top' },
      h('span', { class: 'lm-card-check', 'aria-hidden': 'true' }, createIcon('check', { size: 14 })),
      h('span', { class: 'lm-badge lm-card-base' }),
      h('span', { class: 'lm-card-pending', hidden: true, title: t('card.hash_pending'), role: 'img', 'aria-label': t('card.hash_pending') },
        createIcon('clock', { size: 14 })),
      h('span', { class: 'lm-badge lm-card-update', hidden: true, title: t('card.update_available'), role: 'img', 'aria-label': t('card.update_available') },
        createIcon('download', { size: 12 }), h('span', { text: t('card.update') })),
      h('span', { class: 'lm-card-spacer' }),
      h('div', { class: 'lm-card-actions' },
        compact ? h('button', { type: 'button', class: 'lm-card-btn lm-card-add', dataset: { action: 'add' }, tabindex: '-1', 'aria-label': t('card.add'), title: t('card.add') },
          createIcon('plus', { size: 16 })) : null,
        compact ? null : h('button', { type: 'button', class: 'lm-card-btn', dataset: { action: 'copy' }, tabindex: '-1', 'aria-label': t('card.copy_syntax'), title: t('card.copy_syntax') },
          createIcon('copy', { size: 16 })),
        h('button', { type: 'button', class: 'lm-card-btn', dataset: { action: 'menu' }, tabindex: '-1', 'aria-label': t('card.more'), title: t('card.more'), 'aria-haspopup': 'menu' },
          createIcon('more', { size: 16 }))),
      h('button', { type: 'button', class: 'lm-card-btn lm-card-fav', dataset: { action: 'favorite' }, 'aria-pressed': 'false', tabindex: '-1' },
        createIcon('star', { size: 16 }))),
    h('div', { class: 'lm-card-info' },
      h('div', { class: 'lm-card-name' }),
      h('div', { class: 'lm-card-usage', hidden: true })));
}

/** A maker of blank card slots: the first is built, the others are deep clones of it (a card
 * carries no listeners nor properties a clone would lose), several times cheaper. */
export function createCardFactory(opts) {
  let template = null;
  return () => {
    if (!template) template = buildCard(opts);
    const card = template.cloneNode(true);
    // the one state a clone does not copy: a media element's muted flag (not its attribute)
    card.querySelector('.lm-card-video').muted = template.querySelector('.lm-card-video').muted;
    return card;
  };
}

function setMedia(el, item, settings) {
  const img = el.querySelector('.lm-card-img');
  const video = el.querySelector('.lm-card-video');
  const placeholder = el.querySelector('.lm-card-placeholder');
  const url = item ? item.preview_url : '';
  const isVideo = Boolean(url) && item.preview_type === 'video';
  if (isVideo) {
    if (video.getAttribute('src') !== url) { video.src = url; }
    video.hidden = false;
  } else if (!video.hidden || video.getAttribute('src')) {
    video.pause();
    video.removeAttribute('src');
    video.load();
    video.hidden = true;
  }
  if (url && !isVideo) {
    if (img.getAttribute('src') !== url) {
      img.classList.remove('lm-loaded', 'lm-card-img--instant');
      img.src = url;
    }
    img.hidden = false;
  } else {
    img.removeAttribute('src');
    img.hidden = true;
  }
  placeholder.hidden = Boolean(url);
  el.classList.toggle('lm-card--blur', Boolean(url) && Boolean(item) && shouldBlur(item.preview_nsfw_level, settings));
}

/** Fill a card for `item` (or a loading skeleton when null). */
export function fillCard(el, item, { t, settings, selected, selecting, index, total }) {
  // the grid fills every card on screen each frame: write only what changed
  if (el.__lmIndex !== index) {
    el.__lmIndex = index;
    el.dataset.index = String(index);
    el.setAttribute('aria-posinset', String(index + 1));
  }
  if (el.__lmTotal !== total) { el.__lmTotal = total; el.setAttribute('aria-setsize', String(total)); }
  el.classList.toggle('lm-card--selected', Boolean(selected));
  el.classList.toggle('lm-card--selecting', Boolean(selecting));
  if (el.__lmItem === item && el.__lmSettings === settings) return;
  el.__lmItem = item;
  el.__lmSettings = settings;
  el.classList.toggle('lm-card--loading', !item);
  const name = el.querySelector('.lm-card-name');
  const base = el.querySelector('.lm-card-base');
  const pending = el.querySelector('.lm-card-pending');
  const fav = el.querySelector('.lm-card-fav');
  if (!item) {
    delete el.dataset.path;
    name.textContent = '';
    el.querySelector('.lm-card-usage').hidden = true;
    base.textContent = '';
    base.hidden = true;
    pending.hidden = true;
    el.querySelector('.lm-card-update').hidden = true;
    el.setAttribute('aria-label', t('grid.loading'));
    setMedia(el, null, settings);
    el.querySelector('.lm-card-placeholder').hidden = true;
    return;
  }
  const label = displayName(item);
  el.dataset.path = item.file_path;
  setName(name, label);
  name.title = item.relative_path || label;
  base.textContent = item.base_model || '';
  base.hidden = !item.base_model;
  pending.hidden = !(item.hash_status === 'pending' || item.hash_status === 'hashing');
  el.querySelector('.lm-card-update').hidden = !item.has_update;  // a newer version on CivitAI (issue 14)
  fav.setAttribute('aria-pressed', item.favorite ? 'true' : 'false');
  fav.setAttribute('aria-label', item.favorite ? t('card.unfavorite') : t('card.favorite'));
  fav.title = fav.getAttribute('aria-label');
  el.classList.toggle('lm-card--favorite', Boolean(item.favorite));
  el.classList.toggle('lm-card--flagged', item.metadata_status && item.metadata_status !== 'ok' && item.metadata_status !== 'missing');
  el.setAttribute('aria-label', item.base_model ? `${label} (${item.base_model})` : label);
  const usage = el.querySelector('.lm-card-usage');
  usage.textContent = usageText(item, t);
  usage.hidden = !usage.textContent;
  setMedia(el, item, settings);
}

/** "Used 3 times, last on 2 Dec 2026" for a used model, '' otherwise (usage history, issue 11). */
export function usageText(item, t, lang = document.documentElement.lang || undefined) {
  const count = Number(item && item.usage_count) || 0;
  if (!count || !item.last_used) return '';
  const date = new Date(Number(item.last_used) * 1000).toLocaleDateString(lang, { dateStyle: 'medium' });
  return t('card.used', { count, date });
}
