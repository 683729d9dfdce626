/**
 * Entry of the full library page (/loras, /checkpoints, /embeddings): reads the shell's data
 * attributes, loads translations, opens the sockets and mounts the components. Remounts on
 * language change; keeps no globals. Every request goes to the server's root as the shell's
 * relative `data-root` names it, never to an absolute path: the page works standalone, inside
 * ComfyUI and behind a reverse proxy's sub-path alike.
 */
import { createApiClient } from '../api/client.js';
import { createI18n } from '../i18n/i18n.js';
import { createSocketHub } from '../ws/socket_hub.js';
import { createQueryStore, createSelectionStore, createSettingsStore } from '../state/library_state.js';
import { h } from '../components/dom.js';
import { createIcon } from '../components/icon.js';
import { createToasts } from '../components/toasts.js';
import { createLibraryPanel } from '../components/library_panel.js';
import { createFilterPanel } from '../components/filter_panel.js';
import { createProgressPanel } from '../components/progress_panel.js';
import { createContextMenu } from '../components/context_menu.js';
import { buildListParams, defaultQuery } from '../lib/list_query.js';
import { errorText } from '../i18n/error_text.js';

// Dialogs, the Disk view and the start-up overlay load when first used (and in the background
// once the first cards are on screen): the cards wait for fewer modules.
const LAZY = {
  settings: () => import('../components/settings_dialog.js'),
  duplicates: () => import('../components/duplicates_dialog.js'),
  download: () => import('../components/download_dialog.js'),
  organize: () => import('../components/auto_organize_dialog.js'),
  excluded: () => import('../components/excluded_dialog.js'),
  disk: () => import('../components/disk_view.js'),
  initOverlay: () => import('../components/init_overlay.js'),
  details: () => import('../components/details_dialog.js'),  // opened by the library panel
};

// every type's label is `types.<value>`; prefixes of the types the header offers come from its links
const typeKey = (type) => `types.${type || 'lora'}`;
const PREFIXES = { lora: 'loras', checkpoint: 'checkpoints', embedding: 'embeddings' };
for (const link of document.querySelectorAll('.lm-types [data-type][data-model-type]')) {
  PREFIXES[link.dataset.modelType] = link.dataset.type;
}
const WIDE = '(min-width: 1000px)';

function readSettings(body) {
  try { return JSON.parse(body.dataset.settings || '{}'); } catch { return {}; }
}

function loadPrefs(prefix) {
  try {
    const saved = JSON.parse(localStorage.getItem(`lm.view.${prefix}`) || '{}');
    const d = defaultQuery();
    return {
      sortKey: ['name', 'date', 'size', 'usage', 'last_used'].includes(saved.sortKey) ? saved.sortKey : d.sortKey,
      sortDir: saved.sortDir === 'desc' || saved.sortDir === 'asc' ? saved.sortDir : d.sortDir,
      scopes: { ...d.scopes, ...(saved.scopes || {}) },
      fuzzy: Boolean(saved.fuzzy),
      filtersOpen: saved.filtersOpen,
    };
  } catch {
    return {};
  }
}

function savePrefs(prefix, query, filtersOpen) {
  try {
    const { sortKey, sortDir, scopes, fuzzy } = query;
    localStorage.setItem(`lm.view.${prefix}`, JSON.stringify({ sortKey, sortDir, scopes, fuzzy, filtersOpen }));
  } catch { /* private mode: preferences are simply not kept */ }
}

/** Where the server's root is, as this page sees it: `data-root` ('./', '../') resolved
 * against the page's URL, e.g. 'http://host/models/' behind a proxy serving us at '/models/'. */
function serverRoot(body = document.body, href = location.href) {
  return new URL(body.dataset.root || './', href);
}

function isTyping(el) {
  return el && (el.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(el.tagName));
}

async function start() {
  const body = document.body;
  const prefix = body.dataset.prefix;
  const modelType = body.dataset.modelType;
  const root = serverRoot(body);
  // '/models/' → API at '/models/api/lm', server URLs in answers ('/api/lm/previews?…') under '/models'
  const api = createApiClient({ base: `${root.pathname}api/lm`, urlRoot: root.pathname.replace(/\/+$/, '') });
  const i18n = createI18n({ lang: document.documentElement.lang || 'en' });
  // The translations and page 1 of the models are asked for at once (neither needs the
  // other); the side panels ask for theirs once the first cards are on screen.
  const translations = i18n.load(api, i18n.lang).catch(() => { /* keys fall back to themselves; the page still works */ });
  const diskView = new URLSearchParams(location.search).get('view') === 'disk';

  const prefs = loadPrefs(prefix);
  const { filtersOpen: savedFiltersOpen, ...queryPrefs } = prefs;
  const query = createQueryStore(queryPrefs);
  let firstPage = null;
  if (!diskView) {
    const params = buildListParams(query.get(), 1);
    firstPage = { params: params.toString(), promise: api.models(prefix).list(params) };
    firstPage.promise.catch(() => { /* the grid reports it */ });
  }
  // settles once the first page is shown (or failed): then the side panels load
  const firstShown = firstPage
    ? firstPage.promise.catch(() => {}).then(() => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0))))
    : Promise.resolve();
  performance.mark('lm:requested');
  await translations;
  performance.mark('lm:translated');
  const t = i18n.t;
  const lang = () => i18n.lang;
  const selection = createSelectionStore();
  const settings = createSettingsStore(readSettings(body));
  const events = createSocketHub({ base: root.href }).start();
  const wide = window.matchMedia(WIDE);
  let filtersOpen = wide.matches ? savedFiltersOpen !== false : false;

  const toolsRoot = document.getElementById('lm-header-tools');
  const mainRoot = document.getElementById('lm-main');
  const filtersRoot = document.getElementById('lm-filters');
  const progressRoot = document.getElementById('lm-progress');
  const toastRoot = document.getElementById('lm-toasts');
  const backdrop = document.getElementById('lm-backdrop');
  const initRoot = document.getElementById('initializing');
  const typeLabel = (type) => t(typeKey(type));

  let view = null;

  function setFiltersOpen(open) {
    filtersOpen = open;
    filtersRoot.hidden = !open;
    backdrop.hidden = !open || wide.matches;
    body.classList.toggle('lm-filters-open', open);
    savePrefs(prefix, query.get(), wide.matches ? open : savedFiltersOpen);
    if (view) view.panel.update();
    if (open && !wide.matches) filtersRoot.querySelector('button, input')?.focus();
  }

  function mount() {
    const toasts = createToasts(toastRoot, { t });
    const early = firstPage;
    firstPage = null;
    const panel = createLibraryPanel(mainRoot, {
      api, prefix, modelType, t, lang, toasts, events, query, selection, settings, firstPage: early,
      onToggleFilters: () => setFiltersOpen(!filtersOpen),
      filtersOpen: () => filtersOpen,
      onChanged: () => filters.reload(),
    });
    const filters = createFilterPanel(filtersRoot, {
      models: api.models(prefix), query, t, lang, toasts, after: firstShown,
      onClose: () => { setFiltersOpen(false); panel.focusSearch(); },
    });
    const progress = createProgressPanel(progressRoot, {
      events, api, t, lang, toasts, typeLabel,
      prefixOf: (type) => PREFIXES[type] || prefix,
      onFinished(kind) { if (kind !== 'download') panel.refresh(); },
    });
    const menu = createContextMenu(toolsRoot, { t });
    const tools = h('div', { class: 'lm-tools' },
      h('button', { type: 'button', class: 'lm-btn lm-btn--primary lm-btn--sm', dataset: { tool: 'download' } },
        createIcon('download', { size: 15 }), h('span', { class: 'lm-btn-label', text: t('header.download') })),
      h('button', { type: 'button', class: 'lm-icon-btn', dataset: { tool: 'more' }, 'aria-haspopup': 'menu', 'aria-label': t('header.more'), title: t('header.more') }, createIcon('more')),
      h('button', { type: 'button', class: 'lm-icon-btn', dataset: { tool: 'settings' }, 'aria-label': t('settings.title'), title: t('settings.title') }, createIcon('settings')));
    toolsRoot.append(tools);

    const dialogDeps = {
      api, models: api.models(prefix), prefix, modelType, t, lang, toasts, events, settings,
      actions: panel.actions, refresh: () => panel.refresh(),
    };

    async function fetchAll() {
      try {
        const data = await api.models(prefix).fetchAllCivitai();
        if (data && data.status === 'completed') toasts.success(t('toast.fetch_all_done', { updated: data.updated ?? 0 }));
        else toasts.info(t('toast.fetch_all_started'));
      } catch (err) {
        toasts.error(err.status === 409 ? t('toast.already_running') : t('errors.action_failed', { message: errorText(err, t) }));
      }
    }

    async function checkUpdates() {
      try {
        await api.models(prefix).checkUpdates();
        toasts.info(t('updates.check_started'));
      } catch (err) {
        toasts.error(err.status === 409 ? t('toast.already_running') : t('errors.action_failed', { message: errorText(err, t) }));
      }
    }

    async function rescan() {
      const toast = toasts.info(t('toast.rescanning'), { timeout: 0 });
      try {
        await api.models(prefix).scan();
        toast.dismiss();
        toasts.success(t('toast.rescanned'));
        panel.refresh();
        filters.reload();
      } catch (err) {
        toast.dismiss();
        toasts.error(t('errors.action_failed', { message: errorText(err, t) }));
      }
    }

    function onTool(event) {
      const button = event.target.closest('[data-tool]');
      if (!button || !tools.contains(button)) return;
      const tool = button.dataset.tool;
      if (tool === 'settings') {
        LAZY.settings().then((m) => m.openSettingsDialog({ api, t, toasts, settings, onLanguage: switchLanguage }));
      } else if (tool === 'download') {
        LAZY.download().then((m) => m.openDownloadDialog(dialogDeps));
      } else if (tool === 'more') {
        const selected = selection.get().active ? selection.list() : [];
        menu.open({
          anchor: button, label: t('header.more'),
          entries: [
            { id: 'organize', label: selected.length ? t('header.organize_selected', { count: selected.length }) : t('header.organize'), icon: 'wand' },
            { id: 'duplicates', label: t('header.duplicates'), icon: 'layers' },
            { id: 'fetch-all', label: t('header.fetch_all'), icon: 'refresh' },
            { id: 'check-updates', label: t('updates.check'), icon: 'download' },
            { id: 'excluded', label: t('header.excluded'), icon: 'eyeOff' },
            { separator: true },
            { id: 'rescan', label: t('header.rescan'), icon: 'folder' },
          ],
          select(id) {
            if (id === 'organize') LAZY.organize().then((m) => m.openAutoOrganizeDialog({ ...dialogDeps, filePaths: selected }));
            else if (id === 'duplicates') LAZY.duplicates().then((m) => m.openDuplicatesDialog(dialogDeps));
            else if (id === 'fetch-all') fetchAll();
            else if (id === 'check-updates') checkUpdates();
            else if (id === 'excluded') LAZY.excluded().then((m) => m.openExcludedDialog(dialogDeps));
            else if (id === 'rescan') rescan();
          },
        });
      }
    }
    tools.addEventListener('click', onTool);

    const unsubs = [
      query.subscribe((q) => savePrefs(prefix, q, wide.matches ? filtersOpen : savedFiltersOpen)),
      events.on('models_changed', (msg) => { if (!msg.model_type || msg.model_type === modelType) filters.reload(); }),
      // update checks (issue 14): badges and the "Has update" filter follow a finished check
      events.on('update_check_progress', (msg) => {
        if (msg.status !== 'completed') return;
        if (!msg.background) toasts.success(t('updates.check_done', { count: msg.with_updates ?? 0 }));
        panel.refresh();
      }),
    ];

    view = {
      panel,
      destroy() {
        unsubs.forEach((fn) => fn());
        tools.removeEventListener('click', onTool);
        tools.remove();
        menu.destroy();
        panel.destroy();
        filters.destroy();
        progress.destroy();
        toasts.destroy();
      },
    };
    setFiltersOpen(filtersOpen);
  }

  async function switchLanguage(next) {
    try {
      await i18n.load(api, next);
    } catch {
      return;
    }
    document.documentElement.lang = i18n.lang;
    i18n.apply(document.body);
    document.title = `${typeLabel(modelType)} · ${t('app.title')}`;
    if (view) view.destroy();
    mount();
  }

  function onKeyDown(event) {
    if (event.defaultPrevented || !view) return;
    const dialogOpen = Boolean(document.querySelector('dialog[open]'));
    if (event.key === '/' && !isTyping(document.activeElement) && !dialogOpen && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      view.panel.focusSearch();
    } else if (event.key === 'Escape' && filtersOpen && !wide.matches && !dialogOpen) {
      setFiltersOpen(false);
    }
  }

  // Changes made while the socket was down were not pushed: refetch when it comes back.
  let socketWasOpen = false;
  let socketDropped = false;
  events.onStatus((open) => {
    body.dataset.socket = open ? 'open' : 'closed';
    if (open && socketDropped && view) view.panel.refresh();
    if (!open && socketWasOpen) socketDropped = true;
    if (open) { socketWasOpen = true; socketDropped = false; }
  });

  document.addEventListener('keydown', onKeyDown);
  backdrop.addEventListener('click', () => setFiltersOpen(false));
  wide.addEventListener('change', () => setFiltersOpen(wide.matches ? savedFiltersOpen !== false : false));

  // the header's Disk entry: this page with `?view=disk` (a button: the view is no type page of its own)
  document.querySelector('.lm-types [data-view="disk"]')?.addEventListener('click', () => {
    const url = new URL(location.href);
    url.search = '?view=disk';
    location.assign(url.href);
  });
  let disk = null;
  if (initRoot && body.dataset.initializing === 'true') {
    const { createInitOverlay } = await LAZY.initOverlay();
    createInitOverlay(initRoot, { events, api, t, modelType, onReady: () => { if (disk) disk.reload(); else if (view) view.panel.reload(); } });
  }
  // the Disk view (issue 14): `?view=disk` on any type's page, its header entry current
  if (diskView) {
    for (const link of document.querySelectorAll('.lm-types [aria-current]')) link.removeAttribute('aria-current');
    document.querySelector('.lm-types [data-view="disk"]')?.setAttribute('aria-current', 'page');
    document.title = `${t('disk.title')} · ${t('app.title')}`;
    filtersRoot.style.display = 'none';  // no filters beside the Disk view
    const toasts = createToasts(toastRoot, { t });
    const { createDiskView } = await LAZY.disk();
    disk = createDiskView(mainRoot, { api, t, lang, toasts });
    body.classList.add('lm-ready');
    return;
  }
  mount();
  performance.mark('lm:mounted');
  body.classList.add('lm-ready');
  // the dialogs' modules, fetched while nothing else is going on
  firstShown.then(() => setTimeout(() => {
    for (const [name, load] of Object.entries(LAZY)) if (name !== 'disk' && name !== 'initOverlay') load().catch(() => {});
  }, 1000));
}

start();
