/**
 * Parse what a user pastes into the download dialog: a CivitAI model or version URL, or an id.
 * Pure; returns {modelId, versionId} (numbers or null) or null when nothing is recognised.
 */

function toId(text) {
  const n = Number.parseInt(text, 10);
  return Number.isFinite(n) && n > 0 && String(n) === String(text).replace(/^0+(?=\d)/, '') ? n : null;
}

export function parseCivitaiRef(input) {
  const text = String(input || '').trim();
  if (!text) return null;
  if (/^\d+$/.test(text)) return { modelId: toId(text), versionId: null };
  const versionOnly = /^v(?:ersion)?[:\s]*(\d+)$/i.exec(text);
  if (versionOnly) return { modelId: null, versionId: toId(versionOnly[1]) };
  let url;
  try {
    url = new URL(text.includes('://') ? text : `https://${text}`);
  } catch {
    return null;
  }
  if (!/^https?:$/.test(url.protocol) || !/(^|\.)civitai\.(com|green)$/i.test(url.hostname)) return null;
  const versionParam = url.searchParams.get('modelVersionId');
  const modelMatch = /\/models\/(\d+)/.exec(url.pathname);
  const downloadMatch = /\/api\/download\/models\/(\d+)/.exec(url.pathname);
  const versionPath = /\/model-versions\/(\d+)/.exec(url.pathname);
  if (downloadMatch) return { modelId: null, versionId: toId(downloadMatch[1]) };
  if (versionPath) return { modelId: null, versionId: toId(versionPath[1]) };
  if (modelMatch) return { modelId: toId(modelMatch[1]), versionId: versionParam ? toId(versionParam) : null };
  return null;
}
