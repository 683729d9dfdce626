"""The composition root: every service of the process, built once and fully, and their lifetimes.

Owns construction order and the one cleanup context per resource (cache, usage history, hash
queue, CivitAI session, image fetcher, downloads, jobs, the library's scans and watcher); it
holds no business logic. Both hosts (ComfyUI and standalone) call ``build_services`` with a
``LibraryConfig`` and hang ``AppServices.lifetimes()`` on their application's ``cleanup_ctx``.
"""
from __future__ import annotations

import asyncio
import logging
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .routes.page_templates import PageTemplates
from .services.civitai.civitai_client import CivitaiClient
from .services.civitai.civitai_not_found_cache import NotFoundCache
from .services.civitai.civitai_not_found_store import NotFoundStore
from .services.civitai.civitai_rate_limiter import CivitaiRateLimiter
from .services.civitai.civitai_sync_service import CivitaiSyncService
from .services.civitai.update_check_service import UpdateCheckService
from .services.civitai.update_store import UpdateStore
from .services.downloads.download_service import DownloadService
from .services.downloads.downloader import Downloader
from .services.downloads.huggingface_client import HuggingFaceClient
from .services.downloads.huggingface_downloads import SOURCE as HUGGINGFACE
from .services.downloads.huggingface_downloads import HuggingFaceDownloads
from .services.edits.hash_verification_service import HashVerificationService
from .services.edits.metadata_edit_service import MetadataEditService
from .services.edits.model_lifecycle_service import ModelLifecycleService
from .services.edits.model_move_service import ModelMoveService
from .services.edits.model_trash import ModelTrash, default_os_trash
from .services.edits.preview_asset_service import PreviewAssetService
from .services.edits.tag_update_service import TagUpdateService
from .services.jobs.job_registry import JobRegistry
from .services.library.disk_usage import DiskUsage
from .services.library.hash_waiters import HashWaiters
from .services.library.index_cache import IndexCache, default_cache_dir
from .services.library.library_watcher import LibraryWatcher
from .services.library.model_hasher import FileHashes, HashQueue
from .services.library.model_library import ModelLibrary
from .services.library.model_names import LibraryNames
from .services.library.model_queries import ModelQueries
from .services.library.model_scanner import LibraryRoot
from .services.library.process_walk import ChildWalker
from .services.library.type_library import HashStore, TypeLibrary
from .services.organize.auto_organize_service import AutoOrganizeService
from .services.organize.organize_records import JOB_KIND as ORGANIZE_JOB_KIND
from .services.organize.organize_records import OrganizeProgress
from .services.shared.model_locks import ModelLocks
from .services.shared.model_types import ModelType
from .services.shared.path_guard import PathGuard
from .services.shared.remote_image_fetcher import RemoteImageFetcher
from .services.shared.server_i18n import ServerI18n
from .services.shared.settings_manager import SettingsManager, default_settings_path
from .services.shared.sidecar_store import SidecarStore
from .services.shared.socket_hub import HostSocket, SocketHub
from .services.usage.usage_history import UsageHistory
from .services.use_cases.auto_organize import AutoOrganizeUseCase
from .services.use_cases.bulk_metadata_refresh import JOB_KIND as REFRESH_JOB_KIND
from .services.use_cases.bulk_metadata_refresh import BulkMetadataRefreshUseCase, RefreshProgress
from .services.use_cases.check_updates import JOB_KIND as UPDATE_JOB_KIND
from .services.use_cases.check_updates import (
    CheckUpdatesUseCase,
    DownloadUpdateUseCase,
    UpdateCheckScheduler,
    UpdateProgress,
)
from .services.use_cases.download_model import DownloadModelUseCase
from .services.use_cases.find_missing_models import FindMissingModelsUseCase
from .services.workflows.model_resolver import ModelResolver

_log = logging.getLogger(__name__)

PLUGIN_DIR = Path(__file__).resolve().parent.parent
# aiohttp's cleanup context: called with the app, set up until its yield, torn down after
Lifetime = Callable[[Any], AsyncIterator[None]]


@dataclass(slots=True, kw_only=True)
class LibraryConfig:
    """What a host decides: where models live, where state lives, how events travel."""

    roots: dict[ModelType, list[LibraryRoot]]
    settings_path: Path | None = None
    cache_dir: Path | None = None
    host_socket: HostSocket | None = None
    watch: bool = True
    host_name: str = "standalone"
    # names and origins the host allows on top of the settings file and the environment
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    # seconds after the first scan before the background update check may first run
    update_check_delay: float = 600.0
    # child processes a big library's start-up walk may use (0: every walk in this process)
    walk_processes: int = 2


@dataclass(slots=True, kw_only=True, frozen=True)
class AppServices:
    """Every long-lived service of the process, built once by ``build_services``."""

    config: LibraryConfig
    settings: SettingsManager
    path_guard: PathGuard
    hub: SocketHub
    cache: IndexCache
    hashes: HashStore
    hash_queue: HashQueue
    hash_waiters: HashWaiters
    model_locks: ModelLocks
    library: ModelLibrary
    queries: dict[ModelType, ModelQueries]
    names: LibraryNames  # models by the names workflows use
    usage: UsageHistory  # what queued prompts used (filled in ComfyUI only)
    pages: PageTemplates
    i18n: ServerI18n
    version: str
    plugin_dir: Path
    # edits
    trash: ModelTrash
    metadata: MetadataEditService
    lifecycle: ModelLifecycleService
    previews: PreviewAssetService
    fetcher: RemoteImageFetcher
    tags: TagUpdateService
    moves: ModelMoveService
    hash_verification: HashVerificationService
    # CivitAI: one client (one session, one rate limiter) for the process
    civitai: CivitaiClient
    not_found_store: NotFoundStore
    civitai_sync: CivitaiSyncService
    refresh_jobs: JobRegistry[RefreshProgress]
    bulk_refresh: dict[ModelType, BulkMetadataRefreshUseCase]
    # downloads
    downloads: DownloadService
    download_use_case: DownloadModelUseCase
    huggingface: HuggingFaceDownloads  # HuggingFace files: the hub client, planning, sidecars (issue 14)
    missing_models: FindMissingModelsUseCase  # a workflow's models: present, moved, missing (issue 14)
    # auto-organize: one run at a time across every type
    organizer: AutoOrganizeService
    organize_jobs: JobRegistry[OrganizeProgress]
    auto_organize: dict[ModelType, AutoOrganizeUseCase]
    watcher: LibraryWatcher | None  # None when the host asked not to watch
    # update checks (issue 14): one job for the library, a background schedule
    update_store: UpdateStore
    update_checks: UpdateCheckService
    update_jobs: JobRegistry[UpdateProgress]
    check_updates: CheckUpdatesUseCase
    update_scheduler: UpdateCheckScheduler
    download_update: DownloadUpdateUseCase
    # the Disk view (issue 14): sizes, duplicates and unused models from the indexes
    disk_usage: DiskUsage

    def lifetimes(self) -> list[Lifetime]:
        """One cleanup context per resource, in start order (they stop in reverse)."""
        return [
            self._cache_lifetime,
            self._usage_lifetime,
            self._hash_queue_lifetime,
            self._civitai_lifetime,
            self._fetcher_lifetime,
            self._library_lifetime,
            self._downloads_lifetime,
            self._jobs_lifetime,
            self._updates_lifetime,
        ]

    async def _cache_lifetime(self, _app: Any) -> AsyncIterator[None]:
        await self.cache.open()
        await self.hashes.load()
        try:
            yield
        finally:
            await self.cache.close()

    async def _usage_lifetime(self, _app: Any) -> AsyncIterator[None]:
        await self.usage.open()
        try:
            yield
        finally:
            await self.usage.close()

    async def _hash_queue_lifetime(self, _app: Any) -> AsyncIterator[None]:
        self.hash_queue.set_paused(True)  # the first scans get the disk to themselves
        await self.hash_queue.start()
        try:
            yield
        finally:
            await self.hash_queue.stop()

    async def _civitai_lifetime(self, _app: Any) -> AsyncIterator[None]:
        await self.not_found_store.load_into(self.civitai.not_found_cache)
        try:
            yield
        finally:
            await self.civitai.close()
            await self.huggingface.client.close()
            await self.not_found_store.close()

    async def _fetcher_lifetime(self, _app: Any) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await self.fetcher.close()

    async def _library_lifetime(self, _app: Any) -> AsyncIterator[None]:
        """Scan in the background (pages answer with the initializing view meanwhile)."""
        task = asyncio.create_task(self._initialize_library(), name="lm-initialize")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            if self.watcher is not None:
                await self.watcher.stop()

    async def _initialize_library(self) -> None:
        """Initialize every type; the watcher is in place before the first walk of the disk.

        It starts once the first type has served its cache (a warm start lists at once) and
        before that type walks the disk, so a change another process or host makes while the
        library is still listing is never lost (``TypeLibrary.on_disk_change``).
        """
        started = False

        async def start_watcher() -> None:
            nonlocal started
            if started or self.watcher is None:
                return
            started = True
            try:
                await self.watcher.start()
            except Exception:
                _log.exception("watching the library folders failed; use a manual scan to see changes")

        await self.library.initialize(before_walk=start_watcher)
        await start_watcher()  # when no initialize got as far as its walk
        self.hash_queue.set_paused(False)
        self.library.mark_started()

    async def _downloads_lifetime(self, _app: Any) -> AsyncIterator[None]:
        await self.downloads.start_service()
        try:
            yield
        finally:
            await self.downloads.stop_service()  # before the CivitAI session closes

    async def _jobs_lifetime(self, _app: Any) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await self.refresh_jobs.shutdown()
            await self.organize_jobs.shutdown()

    async def _updates_lifetime(self, _app: Any) -> AsyncIterator[None]:
        """The update store, and the background check (it waits for the first scan itself)."""
        await self.update_store.open()
        scheduler = asyncio.create_task(self.update_scheduler.run(), name="lm-update-scheduler")
        try:
            yield
        finally:
            scheduler.cancel()
            await asyncio.gather(scheduler, return_exceptions=True)
            await self.download_update.close()
            await self.update_jobs.shutdown()
            await self.update_checks.close()
            await self.update_store.close()


def read_version(plugin_dir: Path) -> str:
    """``X.Y.Z-<short git hash>``, or ``X.Y.Z-stable`` outside a git checkout."""
    version = "0.0.0"
    try:
        import tomllib  # type: ignore[import-not-found]
    except ModuleNotFoundError:  # Python 3.10
        tomllib = None
    try:
        text = (plugin_dir / "pyproject.toml").read_text(encoding="utf-8")
        if tomllib is not None:
            version = tomllib.loads(text)["project"]["version"]
        else:
            for line in text.splitlines():
                if line.strip().startswith("version"):
                    version = line.split("=", 1)[1].strip().strip('"')
                    break
    except (OSError, KeyError, ValueError):
        pass
    suffix = "stable"
    if (plugin_dir / ".git").exists():
        try:
            out = subprocess.run(
                ["git", "-C", str(plugin_dir), "rev-parse", "--short", "HEAD"],
                capture_output=True, text=True, timeout=5, check=False,
            )
            if out.returncode == 0 and out.stdout.strip():
                suffix = out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return f"{version}-{suffix}"


def build_services(config: LibraryConfig) -> AppServices:
    """Construct every service (no I/O beyond reading the settings file)."""
    settings = SettingsManager(path=config.settings_path or default_settings_path())
    cache_dir = config.cache_dir or default_cache_dir()
    cache = IndexCache(path=cache_dir / "index.sqlite3")
    hub = SocketHub(host=config.host_socket)
    hashes = HashStore(cache=cache)
    guard = PathGuard({t: [r.path for r in roots] for t, roots in config.roots.items()})
    locks = ModelLocks()
    waiters = HashWaiters()
    sidecars = SidecarStore(contains_real=guard.contains_real)
    fetcher = RemoteImageFetcher()  # the one outbound image fetch (previews), one session

    async def on_hash_done(key: str, result: FileHashes | None, error: BaseException | None) -> None:
        # bound late: the library is built below, and the queue calls this only once running
        await library.on_hash_done(key, result, error)

    rate = settings.get("hash_max_mb_per_second")
    hash_queue = HashQueue(on_done=on_hash_done, max_bytes_per_second=rate * 1024 * 1024 if rate else None)
    usage = UsageHistory(path=cache_dir / "usage.sqlite3")
    walker = ChildWalker(real_folders=guard.real_folders, processes=config.walk_processes) if config.walk_processes else None
    library = ModelLibrary(
        types={
            model_type: TypeLibrary(
                model_type=model_type,
                roots=config.roots.get(model_type, []),
                cache=cache,
                hashes=hashes,
                hub=hub,
                hash_queue=hash_queue,
                write_hash_sidecars=lambda: bool(settings.get("write_hash_sidecars")),
                locks=locks,
                sidecars=sidecars,
                usage=usage,
                walker=walker,
            )
            for model_type in ModelType
        },
        hash_waiters=waiters,
        sidecars=sidecars,
    )

    # edits: they share the model locks
    trash = ModelTrash(os_trash=default_os_trash())
    metadata = MetadataEditService(library=library, locks=locks)
    lifecycle = ModelLifecycleService(library=library, locks=locks, trash=trash, metadata=metadata)
    moves = ModelMoveService(library=library, locks=locks)

    # CivitAI, and what runs on it: bulk refresh, downloads
    not_found_store = NotFoundStore(cache=cache)
    civitai = CivitaiClient(
        base_urls=lambda: settings.get("civitai_api_base"),
        api_key=lambda: settings.get("civitai_api_key"),
        rate_limiter=CivitaiRateLimiter(),
        not_found_cache=NotFoundCache(on_change=not_found_store.on_change),
    )
    civitai_sync = CivitaiSyncService(
        client=civitai, settings=settings, locks=locks, library=library,
        hash_waiters=waiters, hash_queue=hash_queue, fetcher=fetcher,
    )
    refresh_jobs: JobRegistry[RefreshProgress] = JobRegistry(kind=REFRESH_JOB_KIND, concurrency=lambda: len(ModelType))
    huggingface = HuggingFaceDownloads(
        client=HuggingFaceClient(token=lambda: settings.get("huggingface_token")),
        library=library, guard=guard, settings=settings, locks=locks,
    )
    downloads = DownloadService(
        downloader=Downloader(client=civitai, sync=civitai_sync, library=library, hashes=hashes,
                              sources={HUGGINGFACE: huggingface}),
        cache=cache, settings=settings,
    )
    organizer = AutoOrganizeService(library=library, moves=moves, guard=guard, settings=settings)
    organize_jobs: JobRegistry[OrganizeProgress] = JobRegistry(kind=ORGANIZE_JOB_KIND)

    # the socket layer only subscribes to job events; polling reads the registries
    refresh_jobs.subscribe(lambda job: hub.broadcast(job.snapshot()))
    organize_jobs.subscribe(lambda job: hub.broadcast(job.snapshot()))
    downloads.jobs.subscribe(lambda job: hub.broadcast_download(job.id, job.snapshot()))

    # update checks: model details in batches through the same client, results in the cache dir
    update_store = UpdateStore(path=cache_dir / "updates.sqlite3")
    update_checks = UpdateCheckService(library=library, store=update_store, client=civitai, settings=settings)
    update_jobs: JobRegistry[UpdateProgress] = JobRegistry(kind=UPDATE_JOB_KIND)
    update_jobs.subscribe(lambda job: hub.broadcast(job.snapshot()))
    check_updates = CheckUpdatesUseCase(service=update_checks, jobs=update_jobs)
    download_use_case = DownloadModelUseCase(downloads=downloads, client=civitai, library=library, guard=guard,
                                             settings=settings, huggingface=huggingface)

    disk_usage = DiskUsage(library=library)
    watcher = LibraryWatcher(roots=library.root_paths(), on_change=library.on_disk_change) if config.watch else None
    names = LibraryNames(library)
    i18n = ServerI18n(locales_dir=PLUGIN_DIR / "locales")
    pages = PageTemplates(folder=PLUGIN_DIR / "templates", host_name=config.host_name, i18n=i18n)
    return AppServices(
        config=config,
        settings=settings,
        path_guard=guard,
        hub=hub,
        cache=cache,
        hashes=hashes,
        hash_queue=hash_queue,
        hash_waiters=waiters,
        model_locks=locks,
        library=library,
        queries={t: ModelQueries(service=library[t]) for t in ModelType},
        names=names,
        usage=usage,
        pages=pages,
        i18n=i18n,
        version=read_version(PLUGIN_DIR),
        plugin_dir=PLUGIN_DIR,
        trash=trash,
        metadata=metadata,
        lifecycle=lifecycle,
        previews=PreviewAssetService(library=library, locks=locks, metadata=metadata, settings=settings, fetcher=fetcher),
        fetcher=fetcher,
        tags=TagUpdateService(metadata=metadata),
        moves=moves,
        hash_verification=HashVerificationService(library=library, locks=locks, hashes=hashes),
        civitai=civitai,
        not_found_store=not_found_store,
        civitai_sync=civitai_sync,
        refresh_jobs=refresh_jobs,
        bulk_refresh={
            t: BulkMetadataRefreshUseCase(model_type=t, service=library[t], sync=civitai_sync, client=civitai, jobs=refresh_jobs)
            for t in ModelType
        },
        downloads=downloads,
        download_use_case=download_use_case,
        huggingface=huggingface,
        missing_models=FindMissingModelsUseCase(
            resolver=ModelResolver(library=library, names=names, civitai=civitai), library=library
        ),
        organizer=organizer,
        organize_jobs=organize_jobs,
        auto_organize={t: AutoOrganizeUseCase(model_type=t, organizer=organizer, jobs=organize_jobs) for t in ModelType},
        watcher=watcher,
        update_store=update_store,
        update_checks=update_checks,
        update_jobs=update_jobs,
        check_updates=check_updates,
        disk_usage=disk_usage,
        update_scheduler=UpdateCheckScheduler(
            use_case=check_updates, service=update_checks, library=library, settings=settings,
            # low priority: never beside a bulk refresh or a download
            busy=lambda: bool(refresh_jobs.running_count() or downloads.jobs.running_count()),
            delay=config.update_check_delay,
        ),
        download_update=DownloadUpdateUseCase(
            downloads=download_use_case, lifecycle=lifecycle, metadata=metadata, library=library,
            service=update_checks, hub=hub,
        ),
    )
