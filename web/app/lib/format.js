/**
 * Formatters for sizes, dates, counts and hashes shown in cards and dialogs.
 * Pure functions of their inputs (locale passed in), no DOM.
 */

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB'];

export function formatBytes(bytes, locale = 'en') {
  const n = Number(bytes);
  if (!Number.isFinite(n) || n < 0) return '—';
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) { value /= 1024; unit += 1; }
  const digits = unit === 0 || value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toLocaleString(locale, { maximumFractionDigits: digits, minimumFractionDigits: 0 })} ${UNITS[unit]}`;
}

export function formatDate(epochSeconds, locale = 'en') {
  const n = Number(epochSeconds);
  if (!Number.isFinite(n) || n <= 0) return '—';
  return new Date(n * 1000).toLocaleString(locale, { dateStyle: 'medium', timeStyle: 'short' });
}

export function formatCount(n, locale = 'en') {
  return Number(n || 0).toLocaleString(locale);
}

export function formatPercent(done, total) {
  if (!total) return 0;
  return Math.max(0, Math.min(100, Math.round((done / total) * 100)));
}

export function shortHash(hash, length = 10) {
  return hash ? String(hash).slice(0, length).toUpperCase() : '';
}

/** Substitute `{name}` placeholders from params (used by i18n). */
export function interpolate(template, params) {
  if (!params) return template;
  return String(template).replace(/\{(\w+)\}/g, (match, key) => (key in params ? String(params[key]) : match));
}

export function formatSpeed(bytesPerSecond, locale = 'en') {
  return bytesPerSecond ? `${formatBytes(bytesPerSecond, locale)}/s` : '';
}

export function formatDuration(seconds) {
  const s = Math.max(0, Math.round(Number(seconds) || 0));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h ? `${h}:${String(m).padStart(2, '0')}:${String(r).padStart(2, '0')}` : `${m}:${String(r).padStart(2, '0')}`;
}

/**
 * A model name cut into the pieces a line may break between, so long names such as
 * "style_03_with_a_long_name" or "DetailTweakerXL" wrap after "_", "-", "." or at a camelCase
 * step instead of mid-word. Joining the pieces gives the name back unchanged.
 */
export function wrapPieces(name) {
  const text = String(name ?? '');
  return text.split(/(?<=[_\-.\/])(?=[^_\-.\/])|(?<=[a-z])(?=[A-Z])/).filter((piece) => piece !== '');
}
