/**
 * Allow-list HTML sanitiser for CivitAI descriptions: parses into an inert document with
 * DOMParser and rebuilds only allowed elements/attributes as fresh nodes of the target document.
 * Nothing parsed is ever inserted as-is; scripts, styles, event handlers and non-http(s) URLs drop.
 * Images from other origins become links: our pages load only their own images (their CSP),
 * which also keeps CivitAI's image servers from learning when a description is opened.
 */

const ALLOWED_TAGS = new Set([
  'p', 'br', 'hr', 'b', 'strong', 'i', 'em', 'u', 's', 'del', 'sub', 'sup', 'small', 'mark',
  'ul', 'ol', 'li', 'blockquote', 'code', 'pre', 'span', 'div',
  'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'a', 'img', 'table', 'thead', 'tbody', 'tr', 'th', 'td',
]);

const DROPPED_STYLE = 'lm-dropped-style';

/** Elements removed with their whole content. */
const DROPPED_TAGS = new Set([
  'script', 'style', DROPPED_STYLE, 'iframe', 'frame', 'frameset', 'object', 'embed', 'applet', 'template',
  'noscript', 'svg', 'math', 'form', 'input', 'textarea', 'select', 'button', 'link', 'meta',
  'base', 'head', 'title', 'video', 'audio', 'source', 'track', 'canvas', 'portal',
]);

const ALLOWED_ATTRS = {
  a: ['href', 'title'],
  img: ['src', 'alt', 'title', 'width', 'height'],
  td: ['colspan', 'rowspan'],
  th: ['colspan', 'rowspan'],
  ol: ['start'],
};

const URL_ATTRS = new Set(['href', 'src']);
const MAX_DEPTH = 40;

/** The URL if it is absolute http(s), else null (javascript:, data:, relative, ... are dropped). */
export function safeHttpUrl(value) {
  const text = String(value || '').trim();
  if (!text) return null;
  let url;
  try { url = new URL(text); } catch { return null; }
  return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
}

function copyAttributes(source, target, tag) {
  const allowed = ALLOWED_ATTRS[tag];
  if (!allowed) return;
  for (const name of allowed) {
    if (!source.hasAttribute(name)) continue;
    let value = source.getAttribute(name);
    if (URL_ATTRS.has(name)) {
      value = safeHttpUrl(value);
      if (!value) continue;
    } else if (name === 'width' || name === 'height' || name === 'colspan' || name === 'rowspan' || name === 'start') {
      if (!/^\d{1,4}$/.test(value)) continue;
    }
    target.setAttribute(name, value);
  }
  if (tag === 'a') {
    target.setAttribute('target', '_blank');
    target.setAttribute('rel', 'noopener noreferrer nofollow');
  }
  if (tag === 'img') {
    target.setAttribute('loading', 'lazy');
    target.setAttribute('referrerpolicy', 'no-referrer');
    target.setAttribute('decoding', 'async');
  }
}

function rebuild(node, doc, parent, depth) {
  for (const child of node.childNodes) {
    if (child.nodeType === Node.TEXT_NODE) {
      parent.append(doc.createTextNode(child.nodeValue));
      continue;
    }
    if (child.nodeType !== Node.ELEMENT_NODE) continue;
    const tag = child.localName;
    if (DROPPED_TAGS.has(tag) || depth > MAX_DEPTH) continue;
    if (!ALLOWED_TAGS.has(tag)) {
      rebuild(child, doc, parent, depth + 1);
      continue;
    }
    if (tag === 'img') {
      const src = safeHttpUrl(child.getAttribute('src'));
      if (!src) continue;
      if (new URL(src).origin !== doc.location?.origin) {
        parent.append(imageLink(child, src, doc));
        continue;
      }
    }
    const copy = doc.createElement(tag);
    copyAttributes(child, copy, tag);
    rebuild(child, doc, copy, depth + 1);
    parent.append(copy);
  }
}

/** A link to a remote image, named by its alt text (or the file name). */
function imageLink(img, src, doc) {
  const link = doc.createElement('a');
  link.setAttribute('href', src);
  link.setAttribute('target', '_blank');
  link.setAttribute('rel', 'noopener noreferrer nofollow');
  link.className = 'lm-remote-image';
  const name = (img.getAttribute('alt') || '').trim() || decodeURIComponent(new URL(src).pathname.split('/').pop() || 'image');
  link.textContent = `🖼 ${name}`;
  return link;
}

/** Event handlers, style attributes and style elements renamed before parsing. Not a safety
 * measure (the inert document never applies them and the rebuild drops them): the browser
 * reports each one it parses as a CSP violation on the console, burying real problems. */
function quietInline(html) {
  return html.replace(/<\/?style\b/gi, (tag) => tag.replace(/style/i, DROPPED_STYLE))
    .replace(/<[^>]+>/g, (tag) => tag.replace(/([\s/"'])(on[a-z-]+|style)(\s*=)/gi, '$1data-dropped-$2$3'));
}

/** A DocumentFragment of `targetDoc` holding the allowed subset of `html`. */
export function sanitizeHtml(html, targetDoc = document) {
  const fragment = targetDoc.createDocumentFragment();
  if (!html) return fragment;
  const inert = new DOMParser().parseFromString(quietInline(String(html)), 'text/html');
  rebuild(inert.body, targetDoc, fragment, 0);
  return fragment;
}
