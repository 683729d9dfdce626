/**
 * The one HTTP client of the front end: every call returns the decoded JSON or throws ApiError.
 * It knows URLs and payload shapes of the backend contract (notes/API.md); it keeps no state.
 */

/** An HTTP or network failure carrying the server's status and stable error code. */
export class ApiError extends Error {
  constructor(message, { status = 0, code = 'unknown', body = null } = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.body = body;
  }

  get isNotFound() { return this.status === 404; }
  get isMissingRoute() { return this.status === 404 && this.code === 'http_404'; }
  get isNotReady() { return this.status === 503 && this.code === 'service_not_ready'; }
}

function appendQuery(url, query) {
  if (!query) return url;
  const params = query instanceof URLSearchParams ? query : new URLSearchParams();
  if (!(query instanceof URLSearchParams)) {
    for (const [key, value] of Object.entries(query)) {
      if (value === undefined || value === null || value === '') continue;
      if (Array.isArray(value)) value.forEach((v) => params.append(key, String(v)));
      else params.append(key, String(value));
    }
  }
  const text = params.toString();
  return text ? `${url}${url.includes('?') ? '&' : '?'}${text}` : url;
}

async function decode(response) {
  const type = response.headers.get('content-type') || '';
  if (type.includes('application/json')) {
    try { return await response.json(); } catch { return null; }
  }
  const text = await response.text().catch(() => '');
  return text ? { error: text.slice(0, 300) } : null;
}

/**
 * Create a client. `base` is where `/api/lm` lives ('' on our pages; ComfyUI also serves it at
 * '/api/lm'). `fetchImpl` lets a host supply its own fetch (ComfyUI's api.fetchApi wrapper).
 * `urlRoot` is the path the host serves our server's root under ('/comfy' for ComfyUI behind a
 * proxy): URLs the server sends (`preview_url: '/api/lm/previews?...'`) are rooted there.
 */
export function createApiClient({ base = '/api/lm', fetchImpl = (...args) => fetch(...args), urlRoot = '' } = {}) {
  const root = String(urlRoot || '').replace(/\/+$/, '');

  /** A server-relative URL ('/api/lm/...') as the browser must request it; others unchanged. */
  function resolveUrl(url) {
    if (!root || typeof url !== 'string' || !url.startsWith('/') || url.startsWith('//')) return url;
    return `${root}${url}`;
  }

  /** Every `*_url` field of an answer, in place: the one spot server URLs meet the host's root. */
  function resolveUrls(value) {
    if (!root || !value || typeof value !== 'object') return value;
    if (Array.isArray(value)) { value.forEach(resolveUrls); return value; }
    for (const [key, inner] of Object.entries(value)) {
      if (typeof inner === 'string') { if (key.endsWith('_url')) value[key] = resolveUrl(inner); } else resolveUrls(inner);
    }
    return value;
  }

  async function request(method, path, { query, json, form, signal } = {}) {
    const url = appendQuery(`${base}${path}`, query);
    const init = { method, signal, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
    if (json !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(json);
    } else if (form) {
      init.body = form;
    }
    let response;
    try {
      response = await fetchImpl(url, init);
    } catch (err) {
      if (err && err.name === 'AbortError') throw err;
      throw new ApiError(`Network error: ${err && err.message ? err.message : err}`, { status: 0, code: 'network' });
    }
    const body = await decode(response);
    if (!response.ok || (body && body.success === false)) {
      const message = (body && (body.error || body.message)) || `${response.status} ${response.statusText}`;
      const code = (body && body.code) || `http_${response.status}`;
      throw new ApiError(String(message), { status: response.status, code, body });
    }
    return resolveUrls(body) ?? {};
  }

  const get = (path, query, opts = {}) => request('GET', path, { ...opts, query });
  const post = (path, json = {}, opts = {}) => request('POST', path, { ...opts, json });

  /** Routes under `/api/lm/{prefix}/` for one model type. */
  function models(prefix) {
    const p = (route) => `/${prefix}/${route}`;
    return {
      prefix,
      list: (params, opts) => get(p('list'), params, opts),
      topTags: (limit = 40) => get(p('top-tags'), { limit }),
      baseModels: () => get(p('base-models')),
      roots: () => get(p('roots')),
      folders: () => get(p('folders')),
      folderTree: (modelRoot) => get(p('folder-tree'), { model_root: modelRoot }),
      unifiedFolderTree: () => get(p('unified-folder-tree')),
      findDuplicates: () => get(p('find-duplicates')),
      metadata: (filePath) => get(p('metadata'), { file_path: filePath }),
      description: (filePath) => get(p('model-description'), { file_path: filePath }),
      civitaiUrl: (filePath) => get(p('civitai-url'), { file_path: filePath }),
      excluded: () => get(p('excluded')),
      scan: () => post(p('scan')),
      remove: (filePath) => post(p('delete'), { file_path: filePath }),
      bulkDelete: (filePaths) => post(p('bulk-delete'), { file_paths: filePaths }),
      exclude: (filePath) => post(p('exclude'), { file_path: filePath }),
      unexclude: (filePath) => post(p('unexclude'), { file_path: filePath }),
      saveMetadata: (filePath, changes) => post(p('save-metadata'), { file_path: filePath, ...changes }),
      addTags: (filePath, tags) => post(p('add-tags'), { file_path: filePath, tags }),
      removeTags: (filePath, tags) => post(p('remove-tags'), { file_path: filePath, tags }),
      replacePreview(filePath, file, nsfwLevel) {
        const form = new FormData();
        form.append('preview_file', file, file.name || 'preview');
        form.append('model_path', filePath);
        if (nsfwLevel !== undefined && nsfwLevel !== null) form.append('nsfw_level', String(nsfwLevel));
        return request('POST', p('replace-preview'), { form });
      },
      rename: (filePath, newFileName) => post(p('rename'), { file_path: filePath, new_file_name: newFileName }),
      verifyDuplicates: (filePaths) => post(p('verify-duplicates'), { file_paths: filePaths }),
      move: (filePath, targetPath) => post(p('move_model'), { file_path: filePath, target_path: targetPath }),
      moveBulk: (filePaths, targetPath) => post(p('move_models_bulk'), { file_paths: filePaths, target_path: targetPath }),
      fetchCivitai: (filePath) => post(p('fetch-civitai'), { file_path: filePath }),
      fetchAllCivitai: (force = false) => post(p('fetch-all-civitai'), { force, wait: false }),
      fetchAllProgress: () => get(p('fetch-all-civitai-progress')),
      cancelTask: () => post(p('cancel-task')),
      civitaiVersions: (modelId) => get(p(`civitai/versions/${encodeURIComponent(modelId)}`)),
      autoOrganize: (body) => post(p('auto-organize'), body),
      autoOrganizeProgress: () => get(p('auto-organize-progress')),
      autoOrganizeClear: () => post(p('auto-organize-clear')),
      // update checks (issue 14): one check covers the whole library
      checkUpdates: () => post(p('check-updates'), { wait: false }),
      updateCheckProgress: () => get(p('check-updates-progress')),
      updates: (filePath) => get(p('updates'), { file_path: filePath, include_ignored: 'true' }),
      ignoreUpdate: (target, ignore = true) => post(p('ignore-update'), { ...target, ignore }),
      downloadUpdate: (filePath, versionId, replace = false) => post(p('download-update'), { file_path: filePath, version_id: versionId, replace }),
    };
  }

  return {
    request,
    resolveUrl,
    get,
    post,
    models,
    health: () => get('/health-check'),
    settings: () => get('/settings'),
    saveSettings: (changes) => post('/settings', changes),
    messages: (lang) => get('/i18n', { lang }),
    languages: () => get('/i18n/languages'),
    undoDelete: (batchId) => post('/undo-delete', { batch_id: batchId }),
    civitaiVersion: (prefix, versionId) => get(`/${prefix}/civitai/model/version/${encodeURIComponent(versionId)}`),
    downloadModel: (payload) => post('/download-model', { wait: false, ...payload }),
    downloadProgress: (id) => get(`/download-progress/${encodeURIComponent(id)}`),
    cancelDownload: (id) => get('/cancel-download-get', { download_id: id }),
    pauseDownload: (id) => get('/pause-download', { download_id: id }),
    resumeDownload: (id) => get('/resume-download', { download_id: id }),
    downloads: () => get('/downloads'),
  };
}
