"""The composition root: builds every service once per process and runs their lifetimes.

Owns construction order and start/stop; holds no business logic. Both hosts (ComfyUI
and standalone) call ``build_services`` with a ``LibraryConfig`` and then drive
``start``/``stop`` from their application's cleanup context.
"""
from __future__ import annotations

import asyncio
import logging
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import jinja2

from .services.civitai.civitai_client import CivitaiClient
from .services.civitai.civitai_not_found_cache import NotFoundCache
from .services.civitai.civitai_not_found_store import NotFoundStore
from .services.civitai.civitai_rate_limiter import CivitaiRateLimiter
from .services.civitai.civitai_sync_service import CivitaiSyncService
from .services.downloads.download_coordinator import DownloadCoordinator
from .services.downloads.download_manager import DownloadManager
from .services.downloads.downloader import Downloader
from .services.edits.hash_verification_service import HashVerificationService
from .services.library.hash_waiters import HashWaiters
from .services.library.index_cache import IndexCache, default_cache_dir
from .services.library.library_watcher import LibraryWatcher
from .services.library.model_hasher import FileHashes, HashQueue
from .services.edits.metadata_edit_service import MetadataEditService
from .services.organize.auto_organize_service import AutoOrganizeService
from .services.edits.model_lifecycle_service import ModelLifecycleService
from .services.shared.model_locks import ModelLocks
from .services.edits.model_move_service import ModelMoveService
from .services.library.model_records import ModelType
from .services.library.model_scanner import LibraryRoot
from .services.library.type_library import HashStore, TypeLibrary
from .services.edits.model_trash import ModelTrash, default_os_trash
from .services.shared.path_guard import PathGuard
from .services.edits.preview_asset_service import PreviewAssetService
from .services.shared.server_i18n import ServerI18n
from .services.shared.settings_manager import SettingsManager, default_settings_path
from .services.edits.tag_update_service import TagUpdateService
from .services.use_cases.bulk_metadata_refresh import BulkMetadataRefreshUseCase
from .services.use_cases.auto_organize import AutoOrganizeUseCase
from .services.use_cases.download_model import DownloadModelUseCase
from .services.shared.websocket_manager import EventForwarder, WebSocketManager
from .routes.trust_policy import TrustPolicy

_log = logging.getLogger(__name__)

PLUGIN_DIR = Path(__file__).resolve().parent.parent


@dataclass(slots=True, kw_only=True)
class LibraryConfig:
    """What a host decides: where models live, where state lives, how events travel."""

    roots: dict[ModelType, list[LibraryRoot]]
    settings_path: Path | None = None
    cache_dir: Path | None = None
    forward_event: EventForwarder | None = None
    watch: bool = True
    host_name: str = "standalone"
    # names and origins the host allows on top of the settings file and the environment
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()


@dataclass(slots=True, kw_only=True)
class AppServices:
    """Every long-lived service of the process, built once by ``build_services``."""

    config: LibraryConfig
    settings: SettingsManager
    trust: TrustPolicy
    path_guard: PathGuard
    ws: WebSocketManager
    cache: IndexCache
    hashes: HashStore
    hash_queue: HashQueue
    jinja_env: jinja2.Environment
    i18n: ServerI18n
    version: str
    plugin_dir: Path
    model_locks: ModelLocks = field(default_factory=ModelLocks)
    # library mutations (issue 3), set by build_services once the model services exist
    trash: ModelTrash = field(init=False, repr=False)
    metadata_sync: MetadataEditService = field(init=False, repr=False)
    lifecycle: ModelLifecycleService = field(init=False, repr=False)
    previews: PreviewAssetService = field(init=False, repr=False)
    tags: TagUpdateService = field(init=False, repr=False)
    moves: ModelMoveService = field(init=False, repr=False)
    hash_verification: HashVerificationService = field(init=False, repr=False)
    # CivitAI (issue 4): one client (one session, one rate limiter) for the process
    hash_waiters: HashWaiters = field(default_factory=HashWaiters)
    civitai: CivitaiClient | None = None
    civitai_sync: CivitaiSyncService | None = None
    bulk_refresh: dict[ModelType, BulkMetadataRefreshUseCase] = field(default_factory=dict)
    # downloads (issue 5)
    download_manager: DownloadManager | None = None
    download_coordinator: DownloadCoordinator | None = None
    download_use_case: DownloadModelUseCase | None = None
    # auto-organize (issue 5): one file service, one use case per type sharing ws.auto_organize_lock
    file_service: AutoOrganizeService = field(init=False, repr=False)
    auto_organize: dict[ModelType, AutoOrganizeUseCase] = field(default_factory=dict)
    model_services: dict[ModelType, TypeLibrary] = field(default_factory=dict)
    watcher: LibraryWatcher | None = None
    route_controllers: list[Any] = field(default_factory=list)
    _tasks: list[asyncio.Task] = field(default_factory=list)
    on_started: list[Callable[["AppServices"], Any]] = field(default_factory=list)
    on_stopping: list[Callable[["AppServices"], Any]] = field(default_factory=list)

    def service(self, model_type: ModelType) -> TypeLibrary:
        return self.model_services[model_type]

    def service_for_path(self, path: str) -> TypeLibrary | None:
        for service in self.model_services.values():
            if service.root_for(path) is not None:
                return service
        return None


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
    cache = IndexCache(path=(config.cache_dir or default_cache_dir()) / "index.sqlite3")
    ws = WebSocketManager(forward=config.forward_event)
    hashes = HashStore(cache=cache)
    guard = PathGuard({t: [r.path for r in roots] for t, roots in config.roots.items()})
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(PLUGIN_DIR / "templates")),
        autoescape=jinja2.select_autoescape(["html", "xml"]),
        enable_async=True,
    )
    i18n = ServerI18n(locales_dir=PLUGIN_DIR / "locales")
    services_ref: dict[str, AppServices] = {}

    async def on_hash_done(key: str, result: FileHashes | None, error: BaseException | None) -> None:
        type_value, _, path = key.partition("\x00")
        service = services_ref["app"].model_services.get(ModelType(type_value))
        services_ref["app"].hash_waiters.mark_finishing(key)
        try:
            if service is not None:
                await service.on_hash_done(
                    path, result.sha256 if result else None, result.autov2 if result else None, error
                )
        finally:
            services_ref["app"].hash_waiters.resolve(key, result is not None)

    rate = settings.get("hash_max_mb_per_second")
    hash_queue = HashQueue(on_done=on_hash_done, max_bytes_per_second=rate * 1024 * 1024 if rate else None)

    def submit_hash(model_type: ModelType, path: str) -> None:
        hash_queue.submit(f"{model_type.value}\x00{path}", path)

    def submit_hash_now(key: str, path: str, priority: int) -> None:
        hash_queue.submit(key, path, priority=priority)

    trust = TrustPolicy.from_sources(
        configured_hosts=[*config.allowed_hosts, *settings.get("allowed_hosts")],
        configured_origins=[*config.allowed_origins, *settings.get("allowed_origins")],
    )
    app_services = AppServices(
        config=config,
        settings=settings,
        trust=trust,
        path_guard=guard,
        ws=ws,
        cache=cache,
        hashes=hashes,
        hash_queue=hash_queue,
        jinja_env=env,
        i18n=i18n,
        version=read_version(PLUGIN_DIR),
        plugin_dir=PLUGIN_DIR,
    )
    services_ref["app"] = app_services
    for model_type in ModelType:
        app_services.model_services[model_type] = TypeLibrary(
            model_type=model_type,
            roots=config.roots.get(model_type, []),
            cache=cache,
            hashes=hashes,
            ws=ws,
            submit_hash=submit_hash,
            write_hash_sidecars=lambda: bool(settings.get("write_hash_sidecars")),
            locks=app_services.model_locks,
            hash_progress=hash_queue.snapshot,
            contains_real=guard.contains_real,
        )
    _build_mutation_services(app_services)
    _build_civitai_services(app_services, submit_hash_now)
    _build_download_services(app_services)
    app_services.file_service = AutoOrganizeService(
        model_services=app_services.model_services, moves=app_services.moves, guard=guard, settings=settings
    )
    for model_type in ModelType:
        app_services.auto_organize[model_type] = AutoOrganizeUseCase(
            model_type=model_type, file_service=app_services.file_service, ws=ws
        )
    return app_services


def _build_download_services(app: AppServices) -> None:
    """Downloads (issue 5): downloader → manager (queue, history) → coordinator → use case."""
    if app.civitai is None or app.civitai_sync is None:
        return
    downloader = Downloader(client=app.civitai, sync=app.civitai_sync, model_services=app.model_services, hashes=app.hashes)
    app.download_manager = DownloadManager(downloader=downloader, cache=app.cache, settings=app.settings)
    app.download_coordinator = DownloadCoordinator(manager=app.download_manager, ws=app.ws)
    app.download_use_case = DownloadModelUseCase(
        coordinator=app.download_coordinator, client=app.civitai, model_services=app.model_services,
        guard=app.path_guard, settings=app.settings,
    )
    manager = app.download_manager
    app.on_started.append(lambda _app: manager.start())
    app.on_stopping.insert(0, lambda _app: manager.stop())  # before the CivitAI session closes


def _build_civitai_services(app: AppServices, submit_hash_now: Callable[[str, str, int], None]) -> None:
    """The CivitAI client (issue 4), its persisted not-found cache, the sync service and bulk refreshes."""
    settings = app.settings
    store = NotFoundStore(cache=app.cache)
    app.civitai = CivitaiClient(
        base_urls=lambda: settings.get("civitai_api_base"),
        api_key=lambda: settings.get("civitai_api_key"),
        rate_limiter=CivitaiRateLimiter(),
        not_found_cache=NotFoundCache(on_change=store.on_change),
    )
    app.civitai_sync = CivitaiSyncService(
        client=app.civitai, settings=settings, locks=app.model_locks, model_services=app.model_services,
        hash_waiters=app.hash_waiters, submit_hash=submit_hash_now,
    )
    for model_type, service in app.model_services.items():
        app.bulk_refresh[model_type] = BulkMetadataRefreshUseCase(
            model_type=model_type, service=service, sync=app.civitai_sync, client=app.civitai, ws=app.ws,
        )

    async def start(_app: AppServices) -> None:
        assert app.civitai is not None
        await store.load_into(app.civitai.not_found_cache)

    async def stop(_app: AppServices) -> None:
        for use_case in app.bulk_refresh.values():
            await use_case.shutdown()
        if app.civitai_sync is not None:
            await app.civitai_sync.close()
        if app.civitai is not None:
            await app.civitai.close()
        await store.close()

    app.on_started.append(start)
    app.on_stopping.append(stop)


def _build_mutation_services(app: AppServices) -> None:
    """The services behind the mutation routes (issue 3); they share the model locks."""
    models, locks = app.model_services, app.model_locks
    app.trash = ModelTrash(os_trash=default_os_trash())
    app.metadata_sync = MetadataEditService(model_services=models, locks=locks)
    app.lifecycle = ModelLifecycleService(model_services=models, locks=locks, trash=app.trash, metadata=app.metadata_sync)
    app.previews = PreviewAssetService(model_services=models, locks=locks, metadata=app.metadata_sync, settings=app.settings)
    app.tags = TagUpdateService(metadata=app.metadata_sync)
    app.moves = ModelMoveService(model_services=models, locks=locks)
    app.hash_verification = HashVerificationService(model_services=models, locks=locks, hashes=app.hashes)


async def start_services(app: AppServices) -> None:
    """Open the cache, attach services to their routes and start scanning in the background.

    Returns quickly: pages answer (with the initializing view) while a cold scan runs.
    """
    await app.cache.open()
    await app.hashes.load()
    app.hash_queue.set_paused(True)  # the first scans get the disk to themselves
    await app.hash_queue.start()
    for controller in app.route_controllers:
        controller.attach_service(app.model_services[controller.model_type])
    app._tasks.append(asyncio.create_task(_initialize_all(app), name="lm-initialize"))
    for hook in app.on_started:
        result = hook(app)
        if asyncio.iscoroutine(result):
            await result


async def _initialize_all(app: AppServices) -> None:
    """Initialize every model type; the watcher is in place before the first walk of the disk.

    The watcher starts once the first type has served its cache (a warm start lists at
    once) and before that type walks the disk, so a change another process or host makes
    while the library is still listing is never lost: a type not ready yet notes it and
    reconciles once more after its initialize (``TypeLibrary.on_disk_change``).
    """

    async def on_change(folders: list[str] | None) -> None:
        for service in app.model_services.values():
            if folders is None:
                await service.on_disk_change()
                continue
            mine = [f for f in folders if service.root_for(f) is not None]
            # a folder above a root (e.g. the root itself was replaced) means: walk all
            if any(f.rstrip("/") in {r.path.rstrip("/") for r in service.roots} for f in mine):
                await service.on_disk_change()
            elif mine:
                await service.on_disk_change(scope=mine)

    async def start_watcher() -> None:
        if not app.config.watch or app.watcher is not None:
            return
        roots = sorted({r.path for s in app.model_services.values() for r in s.roots})
        # assigned first: a shutdown during start still stops what was started
        app.watcher = LibraryWatcher(roots=roots, on_change=on_change)
        try:
            await app.watcher.start()
        except Exception:
            _log.exception("watching the library folders failed; use a manual scan to see changes")

    # one type after the other: they share one disk, and LoRAs are what people open first
    for model_type in (ModelType.LORA, ModelType.CHECKPOINT, ModelType.EMBEDDING):
        try:
            await app.model_services[model_type].initialize(before_walk=start_watcher)
        except Exception:
            _log.exception("initial scan of %s failed", model_type.prefix)
    await start_watcher()  # when no initialize got as far as its walk
    app.hash_queue.set_paused(False)


async def stop_services(app: AppServices) -> None:
    for hook in app.on_stopping:
        try:
            result = hook(app)
            if asyncio.iscoroutine(result):
                await result
        except Exception:
            _log.exception("shutdown hook failed")
    for task in app._tasks:
        task.cancel()
    for task in app._tasks:
        try:
            await task
        except (asyncio.CancelledError, Exception):
            pass
    app._tasks.clear()
    if app.watcher is not None:
        await app.watcher.stop()
    await app.hash_queue.stop()
    await app.ws.close_all()
    await app.cache.close()


def roots_from_paths(model_type: ModelType, paths: list[str], sub_type: str = "") -> list[LibraryRoot]:
    out: list[LibraryRoot] = []
    seen: set[str] = set()
    for raw in paths:
        if not raw:
            continue
        path = os.path.abspath(os.path.expanduser(raw)).replace(os.sep, "/")
        if path in seen:
            continue
        seen.add(path)
        out.append(LibraryRoot(path=path, model_type=model_type, sub_type=sub_type))
    return out
