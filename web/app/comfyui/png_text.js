/**
 * The text chunks of a PNG (tEXt, iTXt, zTXt), read in the browser: A1111 and Forge write
 * their generation settings, hashes included, as a `parameters` chunk; ComfyUI writes
 * `workflow` and `prompt`. ComfyUI's frontends (1.27, 1.5x) read these when a PNG is dropped
 * but keep them to themselves, so the missing-models check reads the dropped file itself.
 *
 * Pure (a Blob or bytes in, a {keyword: text} object out); never throws for a file that is
 * not a PNG (it gives {}). Compressed chunks need DecompressionStream (every supported browser).
 */
const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
export const MAX_PNG_BYTES = 64 * 1024 * 1024; // a bigger file is not read for its text
const MAX_TEXT_CHUNK = 4 * 1024 * 1024;

async function inflate(bytes) {
  if (typeof DecompressionStream !== 'function') return null;
  try {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate'));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch {
    return null;
  }
}

const latin1 = new TextDecoder('latin1');
const utf8 = new TextDecoder('utf-8');

/** {keyword: text} of every text chunk of `bytes` (a Uint8Array or ArrayBuffer); the first wins. */
export async function pngTextChunks(bytes) {
  const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const out = {};
  if (data.length < 8 || SIGNATURE.some((b, i) => data[i] !== b)) return out;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let at = 8;
  while (at + 12 <= data.length) {
    const length = view.getUint32(at);
    const type = latin1.decode(data.subarray(at + 4, at + 8));
    const start = at + 8;
    const end = start + length;
    if (end + 4 > data.length) break; // truncated
    if (type === 'IEND') break;
    if ((type === 'tEXt' || type === 'iTXt' || type === 'zTXt') && length <= MAX_TEXT_CHUNK) {
      const body = data.subarray(start, end);
      const nul = body.indexOf(0);
      if (nul > 0) {
        const keyword = latin1.decode(body.subarray(0, nul));
        let text = null;
        if (type === 'tEXt') {
          text = latin1.decode(body.subarray(nul + 1));
        } else if (type === 'zTXt') {
          const raw = await inflate(body.subarray(nul + 2));
          text = raw ? latin1.decode(raw) : null;
        } else {
          const compressed = body[nul + 1] === 1;
          const lang = body.indexOf(0, nul + 3);
          const translated = lang < 0 ? -1 : body.indexOf(0, lang + 1);
          if (translated >= 0) {
            const rest = body.subarray(translated + 1);
            const raw = compressed ? await inflate(rest) : rest;
            text = raw ? utf8.decode(raw) : null;
          }
        }
        if (text !== null && !(keyword in out)) out[keyword] = text;
      }
    }
    at = end + 4; // past the CRC
  }
  return out;
}

/** A dropped file that is a PNG, from a drop event's DataTransfer (or null). */
export function droppedPng(dataTransfer) {
  const files = dataTransfer?.files;
  if (!files || files.length !== 1) return null;
  const file = files[0];
  const png = file.type === 'image/png' || /\.png$/i.test(file.name || '');
  return png && file.size <= MAX_PNG_BYTES ? file : null;
}

/** The A1111 `parameters` text of a PNG Blob ('' when it has none). */
export async function pngParameters(blob) {
  const chunks = await pngTextChunks(await blob.arrayBuffer());
  return typeof chunks.parameters === 'string' ? chunks.parameters : '';
}
