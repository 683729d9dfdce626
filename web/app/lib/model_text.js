/**
 * Text a user copies or edits for a model: LoRA syntax, trigger words, usage tips.
 * Pure: takes listing items (API.md item fields), returns strings and values.
 */

/** Usage tips are stored as a JSON string (`{"strength": 0.8, "clip_strength": 1}`) in sidecars. */
export function parseUsageTips(value) {
  if (!value) return {};
  if (typeof value === 'object') return { ...value };
  try {
    const parsed = JSON.parse(value);
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed : {};
  } catch {
    return {};
  }
}

export function serializeUsageTips(tips) {
  const clean = {};
  for (const [key, value] of Object.entries(tips || {})) {
    if (value === '' || value === null || value === undefined || Number.isNaN(value)) continue;
    clean[key] = value;
  }
  return JSON.stringify(clean);
}

function formatStrength(value) {
  const n = Number(value);
  if (!Number.isFinite(n)) return '1';
  return String(Math.round(n * 100) / 100);
}

/** The file name as loaders reference it (no extension). */
export function loraName(item) {
  return item.file_name || item.model_name || '';
}

/** `<lora:name:strength>`; the model's own usage tip wins over the default strength. */
export function loraSyntax(item, defaultStrength = 1) {
  const tips = parseUsageTips(item.usage_tips);
  const strength = tips.strength ?? defaultStrength;
  const clip = tips.clip_strength;
  const base = `<lora:${loraName(item)}:${formatStrength(strength)}`;
  return clip !== undefined && clip !== null && Number(clip) !== Number(strength)
    ? `${base}:${formatStrength(clip)}>`
    : `${base}>`;
}

export function embeddingSyntax(item) {
  return `embedding:${item.file_name}`;
}

/** What "copy syntax" copies for each model type. */
export function modelSyntax(item, defaultStrength = 1) {
  if (item.model_type === 'embedding') return embeddingSyntax(item);
  if (item.model_type === 'lora') return loraSyntax(item, defaultStrength);
  return item.relative_path || item.file_name;
}

/** The user's trigger words first, then CivitAI's, without duplicates. */
export function triggerWords(item) {
  const seen = new Set();
  const out = [];
  for (const word of [...(item.trigger_words || []), ...(item.civitai_trigger_words || []),
    ...((item.civitai && item.civitai.trainedWords) || [])]) {
    const text = String(word).trim();
    const key = text.toLowerCase();
    if (text && !seen.has(key)) { seen.add(key); out.push(text); }
  }
  return out;
}

export function displayName(item) {
  return item.model_name || item.file_name || '';
}

/** Normalise tag input the way the server does (trimmed, lower-case, unique). */
export function normaliseTags(text) {
  const seen = new Set();
  for (const part of String(text).split(',')) {
    const tag = part.trim().toLowerCase();
    if (tag) seen.add(tag);
  }
  return [...seen];
}

/** `https://civitai.com/models/<id>?modelVersionId=<v>` for an item with CivitAI data, else ''. */
export function civitaiModelUrl(item) {
  const civitai = item.civitai || {};
  if (!civitai.modelId) return '';
  const version = civitai.id ? `?modelVersionId=${encodeURIComponent(civitai.id)}` : '';
  return `https://civitai.com/models/${encodeURIComponent(civitai.modelId)}${version}`;
}
