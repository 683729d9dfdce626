/**
 * Where things are served: ComfyUI's base path (a reverse proxy may mount it under '/comfy')
 * and the full library pages. Pure but for reading `location`; `api` comes in as a dep.
 */

/** Returns {basePath(), libraryUrl(prefix)} for ComfyUI's `api`. */
export function createUrls({ api }) {
  /** Where ComfyUI is served ('' at the root, '/comfy' behind a proxy), from api.apiURL.
   * Read on every call: api_base may be set after this module loaded. */
  function basePath() {
    const apiRoot = new URL(api.apiURL(''), location.href).pathname.replace(/\/+$/, '');
    return apiRoot.replace(/\/api$/, '');
  }

  /** The full library page of a listing prefix (ComfyUI itself serves `/embeddings`). */
  function libraryUrl(prefix = 'loras') {
    const path = prefix === 'embeddings' ? `/lm/${prefix}` : `/${prefix}`;
    return new URL(`${basePath()}${path}`, location.origin).href;
  }

  return { basePath, libraryUrl };
}
