/**
 * The LoRA list of the LoRA Loader / Stacker nodes as data: reading the stored `loras` value
 * (the JSON py/nodes/lora_list.py parses, or `<lora:name:0.8>` text), writing it back, and the
 * list edits the widget offers. Pure and DOM-free (tests import it alone); it must not reach
 * the network or ComfyUI.
 */
import { parseUsageTips } from '../../lib/model_text.js';

export const MAX_ENTRIES = 200; // py/nodes/lora_list.py MAX_ENTRIES
export const MAX_STRENGTH = 100; // core LoraLoader's bound

// the node's own pattern (lora_list._SYNTAX): <lora:name>, <lora:name:0.8>, <lora:name:0.8:0.6>
const SYNTAX = /<lora:([^:<>]+?)(?::(-?[\d.]+))?(?::(-?[\d.]+))?>/gi;
const SHA256 = /^[0-9a-f]{64}$/;

const slash = (value) => String(value ?? '').trim().replace(/\\/g, '/');

/** A strength as a finite number within ±MAX_STRENGTH, rounded to 1/1000 (else `fallback`). */
export function cleanStrength(value, fallback = 1) {
  const number = typeof value === 'string' && !value.trim() ? NaN : Number(value);
  if (!Number.isFinite(number)) return fallback;
  return Math.round(Math.max(-MAX_STRENGTH, Math.min(MAX_STRENGTH, number)) * 1000) / 1000;
}

/** One entry in the stored shape ({name, strength, clip_strength, active, sha256}), or null. */
export function makeEntry(raw) {
  if (typeof raw === 'string') raw = { name: raw };
  if (!raw || typeof raw !== 'object') return null;
  const name = slash(raw.name ?? raw.lora_name ?? raw.path);
  if (!name) return null;
  const strength = cleanStrength(raw.strength ?? raw.model_strength, 1);
  const sha = String(raw.sha256 || '').trim().toLowerCase();
  return {
    name,
    strength,
    clip_strength: cleanStrength(raw.clip_strength, strength),
    active: raw.active === undefined ? raw.on !== false : raw.active !== false,
    sha256: SHA256.test(sha) ? sha : '',
  };
}

/** Every `<lora:name:strength[:clip]>` in `text` (a bare name is strength 1, clip = strength). */
export function parseLoraSyntax(text) {
  const out = [];
  for (const match of String(text || '').matchAll(SYNTAX)) {
    const strength = match[2] !== undefined ? cleanStrength(match[2], 1) : 1;
    const clip = match[3] !== undefined ? cleanStrength(match[3], strength) : strength;
    out.push({ name: slash(match[1]), strength, clip_strength: clip, active: true, sha256: '' });
  }
  return out;
}

/** Whether pasted text holds `<lora:...>` syntax. */
export const hasLoraSyntax = (text) => /<lora:[^:<>]+?(?::-?[\d.]+)?(?::-?[\d.]+)?>/i.test(String(text || ''));

/** The entries of a stored `loras` value: JSON (a list or {entries}) or `<lora:...>` text;
 * anything unreadable is no entries (the node reports it when it runs). */
export function parseStored(value) {
  if (Array.isArray(value)) return value.map(makeEntry).filter(Boolean).slice(0, MAX_ENTRIES);
  const text = String(value ?? '').trim();
  if (!text) return [];
  if (text[0] !== '[' && text[0] !== '{') return parseLoraSyntax(text).slice(0, MAX_ENTRIES);
  let data;
  try { data = JSON.parse(text); } catch { return []; }
  if (data && !Array.isArray(data) && typeof data === 'object') data = data.entries ?? data.loras;
  return Array.isArray(data) ? data.map(makeEntry).filter(Boolean).slice(0, MAX_ENTRIES) : [];
}

/** The stored form: `{"entries": [...]}` as lora_list.to_json writes it (sha256 only when known). */
export function serialize(entries) {
  return JSON.stringify({
    entries: entries.map((e) => ({
      name: e.name, strength: e.strength, clip_strength: e.clip_strength, active: e.active !== false,
      ...(e.sha256 ? { sha256: e.sha256 } : {}),
    })),
  });
}

/** The name ComfyUI's LoRA loaders use for a listing item: its path below the LoRA folder. */
export function nameOfItem(item) {
  return slash(item?.relative_path || item?.file_name || item?.name || '');
}

/** A model's default strengths: its usage tips ({"strength", "clip_strength"}), else `fallback`. */
export function defaultStrengths(usageTips, fallback = 1) {
  const tips = parseUsageTips(usageTips);
  const model = cleanStrength(tips.strength, cleanStrength(fallback, 1));
  return { strength: model, clipStrength: cleanStrength(tips.clip_strength, model) };
}

const sameName = (a, b) => slash(a).toLowerCase() === slash(b).toLowerCase();

/** The index of the entry naming `name` (with or without extension), else -1. */
export function indexOfName(entries, name) {
  const wanted = slash(name);
  const stem = (n) => slash(n).replace(/\.[^./]+$/, '');
  let i = entries.findIndex((e) => sameName(e.name, wanted));
  if (i < 0) i = entries.findIndex((e) => sameName(stem(e.name), stem(wanted)));
  // `<lora:ink>` names a file by its stem alone
  if (i < 0 && !wanted.includes('/')) i = entries.findIndex((e) => sameName(stem(e.name).split('/').pop(), stem(wanted)));
  return i;
}

/**
 * `entries` with `item` (a listing item or a lookup card) appended. Strengths: the given ones,
 * else the item's usage tips, else `fallback`. A LoRA already in the list is switched on and
 * keeps its place and strengths. Returns {entries, index, added}.
 */
export function addEntry(entries, item, { strength, clipStrength, fallback = 1 } = {}) {
  const name = nameOfItem(item);
  if (!name) return { entries, index: -1, added: false };
  const existing = indexOfName(entries, name);
  if (existing >= 0) {
    const next = entries.slice();
    next[existing] = { ...next[existing], active: true };
    return { entries: next, index: existing, added: false };
  }
  if (entries.length >= MAX_ENTRIES) return { entries, index: -1, added: false };
  const tips = defaultStrengths(item.usage_tips, fallback);
  const model = strength === undefined || strength === null ? tips.strength : cleanStrength(strength, tips.strength);
  const clip = clipStrength === undefined || clipStrength === null
    ? (strength === undefined || strength === null ? tips.clipStrength : model)
    : cleanStrength(clipStrength, model);
  const sha = String(item.sha256 || '').toLowerCase();
  const entry = { name, strength: model, clip_strength: clip, active: true, sha256: SHA256.test(sha) ? sha : '' };
  return { entries: [...entries, entry], index: entries.length, added: true };
}

/** `entries` with the pasted ones merged in (a name already listed takes the pasted strengths). */
export function mergeEntries(entries, pasted) {
  let next = entries.slice();
  for (const entry of pasted) {
    const i = indexOfName(next, entry.name);
    if (i >= 0) next[i] = { ...next[i], strength: entry.strength, clip_strength: entry.clip_strength, active: true };
    else if (next.length < MAX_ENTRIES) next = [...next, { ...entry }];
  }
  return next;
}

export function removeEntry(entries, index) {
  return entries.filter((_, i) => i !== index);
}

/** `entries` with the entry at `from` moved to `to` (both clamped into the list). */
export function moveEntry(entries, from, to) {
  if (from < 0 || from >= entries.length) return entries;
  const target = Math.max(0, Math.min(entries.length - 1, to));
  if (target === from) return entries;
  const next = entries.slice();
  const [moved] = next.splice(from, 1);
  next.splice(target, 0, moved);
  return next;
}

export function toggleEntry(entries, index, active) {
  return entries.map((e, i) => (i === index ? { ...e, active: active === undefined ? !e.active : Boolean(active) } : e));
}

/** `entries` with `field` ('strength' | 'clip_strength') of one entry set (cleaned). */
export function setStrength(entries, index, field, value) {
  if (field !== 'strength' && field !== 'clip_strength') return entries;
  return entries.map((e, i) => (i === index ? { ...e, [field]: cleanStrength(value, e[field]) } : e));
}

/** `entries` with the entry named `name` renamed (and its hash set) after a lookup found it. */
export function resolveEntry(entries, index, card) {
  if (!card || index < 0 || index >= entries.length) return entries;
  const name = nameOfItem(card) || entries[index].name;
  const sha = String(card.sha256 || '').toLowerCase();
  return entries.map((e, i) => (i === index ? { ...e, name, sha256: e.sha256 || (SHA256.test(sha) ? sha : '') } : e));
}

const strengthText = (v) => (Number.isInteger(v) ? v.toFixed(1) : String(Number(v.toFixed(4))));

/** `<lora:stem:0.8>` text of the active entries (lora_list.format_syntax). */
export function formatSyntax(entries) {
  return entries.filter((e) => e.active !== false).map((e) => {
    const stem = e.name.split('/').pop().replace(/\.[^.]+$/, '');
    const clip = e.clip_strength !== e.strength ? `:${strengthText(e.clip_strength)}` : '';
    return `<lora:${stem}:${strengthText(e.strength)}${clip}>`;
  }).join(' ');
}

/** What a list entry shows: the file's name without folder and extension. */
export const displayName = (entry) => entry.name.split('/').pop().replace(/\.[^.]+$/, '');
