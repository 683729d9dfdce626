"""Which models have newer versions on CivitAI: the batch fetch of model details, the rules
of what counts as an update, the ignore lists and the per-type view listings read.

Owns those rules (below) and the views; it must not run jobs (the check use case does),
download anything or format HTTP. Remote versions and ignore lists live in ``UpdateStore``.

What counts as an update
------------------------
For every CivitAI model the library has files of (by the sidecar's ``modelId``), a version
on CivitAI is an update when it is newer (published later; the version id breaks ties and
stands in for a missing date) than the newest version the library has of that model, and
neither it nor its model is ignored. With ``update_same_base_model`` on (the default) the
comparison is made per base model: files of a model are grouped by their version's base
model, and only versions of the same base model count for a group.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Mapping

from ...errors import NotFoundError, ValidationError
from ..library.model_library import ModelLibrary
from ..library.model_records import ModelEntry, ModelType
from ..shared.settings_manager import SettingsManager
from .civitai_client import CivitaiClient
from .civitai_metadata_merge import normalize_base_model
from .update_records import ModelUpdate, RemoteModel, RemoteVersion, UpdateView
from .update_store import UpdateStore

__all__ = ["SYNC_VIEW_LIMIT", "UpdateCheckService", "compute_updates"]

_log = logging.getLogger(__name__)

# Up to this many models of a type, a view is recomputed in the request that finds it stale
# (about a millisecond); above it, listings read the last view while a thread computes the next.
SYNC_VIEW_LIMIT = 10_000
_views_made = itertools.count(1)


class UpdateCheckService:
    """Fetches model details in batches, keeps the update views, edits the ignore lists.

    Raises ``ValidationError`` and ``NotFoundError`` for bad ignore requests and the client's
    upstream errors from ``fetch_models``; writes ``UpdateStore``.
    """

    def __init__(
        self,
        *,
        library: ModelLibrary,
        store: UpdateStore,
        client: CivitaiClient,
        settings: SettingsManager,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._library = library
        self.store = store
        self._client = client
        self._settings = settings
        self._clock = clock
        self._views: dict[ModelType, UpdateView] = {}
        self._computing: dict[ModelType, asyncio.Task[None]] = {}

    @property
    def batch_limit(self) -> int:
        return self._client.batch_limit

    # ----------------------------------------------------------------- checking

    def model_ids(self) -> list[int]:
        """Every CivitAI model id the library has files of (excluded models left out), sorted."""
        ids: set[int] = set()
        for model_type in self._library:
            for entry in list(self._library[model_type].index.entries.values()):
                mid = _model_id(entry)
                if mid is not None and not entry.exclude:
                    ids.add(mid)
        return sorted(ids)

    async def fetch_models(self, model_ids: Sequence[int]) -> int:
        """Ask CivitAI for these models (``GET /models?ids=``, 100 a call) and store what it says;
        a model CivitAI does not know is stored with no versions. Returns how many it knew."""
        found = await self._client.get_models(list(model_ids))
        now = self._clock()
        models = []
        for mid in model_ids:
            data = found.get(mid)
            model = RemoteModel.from_civitai(data, checked_at=now) if data else None
            models.append(model or RemoteModel(model_id=mid, checked_at=now))
        await self.store.save_models(models)
        return len(found)

    async def finish_check(self) -> None:
        await self.store.set_last_check(self._clock())
        await self.refresh_views()

    # ----------------------------------------------------------------- ignore lists

    async def set_ignored(self, *, model_id: int | None, version_id: int | None, ignored: bool) -> dict[str, Any]:
        """Ignore (or stop ignoring) a whole model or one version; returns what was changed."""
        if (model_id is None) == (version_id is None):
            raise ValidationError("give exactly one of 'model_id' and 'version_id'")
        if version_id is not None:
            owner = self._owner_of(version_id)
            if owner is None:
                raise NotFoundError(f"no checked CivitAI model has a version {version_id}")
            changed = await self.store.set_version_ignored(version_id, owner, ignored)
            result = {"version_id": version_id, "model_id": owner, "ignored": ignored, "changed": changed}
        else:
            assert model_id is not None
            if self.store.model(model_id) is None and not self.store.is_model_ignored(model_id):
                raise NotFoundError(f"no checked CivitAI model has the id {model_id}")
            changed = await self.store.set_model_ignored(model_id, ignored)
            result = {"model_id": model_id, "ignored": ignored, "changed": changed}
        await self.refresh_views()
        return result

    def _owner_of(self, version_id: int) -> int | None:
        known = self.store.ignored_versions().get(version_id)
        if known is not None:
            return known
        for model in self.store.models().values():
            if model.version(version_id) is not None:
                return model.model_id
        return None

    # ----------------------------------------------------------------- views

    def _same_base(self) -> bool:
        return bool(self._settings.get("update_same_base_model"))

    def _stamp(self, model_type: ModelType) -> tuple[Any, ...]:
        return (self._library[model_type].index.version, self.store.version, self._same_base())

    def view(self, model_type: ModelType) -> UpdateView:
        """The current view of ``model_type`` (listing filter and item field read it).

        Never checked: an empty view at once. A large type whose index changed meanwhile gets
        the previous view while a worker thread computes the next one.
        """
        stamp = self._stamp(model_type)
        cached = self._views.get(model_type)
        if cached is not None and cached.stamp == stamp:
            return cached
        if not self.store.models():
            view = UpdateView(stamp=stamp, version=next(_views_made))
            self._views[model_type] = view
            return view
        index = self._library[model_type].index
        only_index_moved = cached is not None and cached.stamp[1:] == stamp[1:]
        if only_index_moved and len(index.entries) > SYNC_VIEW_LIMIT:
            self._recompute_later(model_type)
            return cached  # type: ignore[return-value]
        view = self._build(model_type, list(index.entries.values()), stamp)
        self._views[model_type] = view
        return view

    def _build(self, model_type: ModelType, entries: list[ModelEntry], stamp: tuple[Any, ...]) -> UpdateView:
        updates = compute_updates(
            entries, self.store.models(), ignored_models=self.store.ignored_models(),
            ignored_versions=frozenset(self.store.ignored_versions()), same_base=stamp[2],
            model_type=model_type.value,
        )
        by_path = {path: update for update in updates for path in update.local_paths}
        paths = frozenset(path for update in updates if update.has_update for path in update.local_paths)
        return UpdateView(stamp=stamp, version=next(_views_made), paths=paths, by_path=by_path, updates=tuple(updates))

    def _recompute_later(self, model_type: ModelType) -> None:
        running = self._computing.get(model_type)
        if running is not None and not running.done():
            return
        self._computing[model_type] = asyncio.get_running_loop().create_task(
            self._recompute(model_type), name=f"lm-update-view-{model_type.prefix}"
        )

    async def _recompute(self, model_type: ModelType) -> None:
        stamp = self._stamp(model_type)
        entries = list(self._library[model_type].index.entries.values())
        view = await asyncio.to_thread(self._build, model_type, entries, stamp)
        current = self._views.get(model_type)
        if current is None or current.stamp != self._stamp(model_type):
            self._views[model_type] = view

    async def refresh_views(self) -> None:
        """Recompute every type's view now (after a check or an ignore-list change)."""
        for model_type in self._library:
            stamp = self._stamp(model_type)
            entries = list(self._library[model_type].index.entries.values())
            if not self.store.models():
                self._views[model_type] = UpdateView(stamp=stamp, version=next(_views_made))
                continue
            self._views[model_type] = await asyncio.to_thread(self._build, model_type, entries, stamp)

    async def close(self) -> None:
        tasks = [t for t in self._computing.values() if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ----------------------------------------------------------------- reading

    def updates(self, model_type: ModelType, *, file_path: str | None = None, include_ignored: bool = False) -> list[ModelUpdate]:
        """The model groups of a type with newer versions (or the group of one file)."""
        view = self.view(model_type)
        if file_path is not None:
            update = view.by_path.get(file_path)
            return [update] if update is not None else []
        return [u for u in view.updates if u.versions and (include_ignored or u.has_update)]

    def has_update(self, view: UpdateView, path: str) -> bool:
        return path in view.paths


def _model_id(entry: ModelEntry) -> int | None:
    values = entry.civitai.values_tuple
    if not values:
        return None
    mid = values[1]
    return mid if type(mid) is int and mid > 0 else None


def compute_updates(
    entries: Iterable[ModelEntry],
    models: Mapping[int, RemoteModel],
    *,
    ignored_models: frozenset[int],
    ignored_versions: frozenset[int],
    same_base: bool,
    model_type: str,
) -> list[ModelUpdate]:
    """The groups of local files with their newer versions (pure; safe in a worker thread)."""
    groups: dict[tuple[int, str], list[tuple[str, int | None, str]]] = {}
    lookups: dict[int, dict[int, RemoteVersion]] = {}
    for entry in entries:
        values = entry.civitai.values_tuple
        if not values or entry.exclude:
            continue
        mid = values[1]
        if type(mid) is not int:
            continue
        remote = models.get(mid)
        if remote is None or not remote.versions:
            continue
        vid = values[0] if type(values[0]) is int else None
        base = ""
        if same_base:
            by_id = lookups.get(mid)
            if by_id is None:
                by_id = lookups[mid] = {v.version_id: v for v in remote.versions}
            known = by_id.get(vid) if vid is not None else None
            base = known.base_model if known is not None and known.base_model else normalize_base_model(entry.base_model)
        groups.setdefault((mid, base), []).append((entry.file_path, vid, values[4] or ""))
    updates: list[ModelUpdate] = []
    for (mid, base), members in sorted(groups.items()):
        remote = models[mid]
        by_id = lookups.get(mid) or {v.version_id: v for v in remote.versions}
        local_ids = {vid for _, vid, _ in members if vid is not None}
        local = [by_id.get(vid) or RemoteVersion(version_id=vid, model_id=mid) for vid in local_ids]
        # a file whose version id is unknown says nothing about what is newer
        newer = [
            v for v in remote.versions
            if local and v.version_id not in local_ids
            and (not same_base or v.base_model == base)
            and all(v.is_newer_than(mine) for mine in local)
        ]
        newer.sort(key=lambda v: (v.published_at, v.version_id), reverse=True)
        newest = max(local, key=lambda v: (v.published_at, v.version_id)) if local else None
        updates.append(ModelUpdate(
            model_id=mid,
            model_name=remote.name or next((name for _, _, name in members if name), ""),
            model_type=model_type,
            base_model=base,
            local_paths=tuple(sorted(path for path, _, _ in members)),
            newest_local_version_id=newest.version_id if newest is not None else 0,
            versions=tuple(newer),
            ignored_versions=frozenset(v.version_id for v in newer if v.version_id in ignored_versions),
            model_ignored=mid in ignored_models,
        ))
    return updates
