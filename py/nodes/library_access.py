"""The library as ComfyUI's executor thread reaches it: every question is a coroutine handed
to the server's event loop (thread-safely), and the node waits for the answer.

Owns that hand-over and the questions nodes ask (which file a LoRA name stands for, trigger
words, AutoV2 hashes, recording what a prompt used); it must never touch the index from the
executor thread, nor block the loop.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ..services.library.model_records import ModelEntry
from ..services.library.trigger_words import merge_trigger_words
from ..services.shared.model_types import ModelType
from ..services.use_cases.record_usage import record_prompt_usage
from .lora_list import LoraEntry

if TYPE_CHECKING:
    from ..app_services import AppServices

_log = logging.getLogger(__name__)
T = TypeVar("T")

ANSWER_TIMEOUT = 30.0  # a look-up; hashing a large file may take longer (HASH_TIMEOUT)
HASH_TIMEOUT = 600.0
STARTUP_WAIT = 120.0
KINDS = {"lora": ModelType.LORA, "checkpoint": ModelType.CHECKPOINT, "embedding": ModelType.EMBEDDING}


@dataclass(slots=True, frozen=True, kw_only=True)
class ResolvedLora:
    entry: LoraEntry  # with the name as it is now
    file_path: str
    warning: str = ""  # set when the stored name no longer existed


class NodeLibrary:
    """What nodes ask the library; built by the ComfyUI host once its services exist."""

    def __init__(self, *, services: "AppServices", loop: asyncio.AbstractEventLoop) -> None:
        self._services = services
        self._loop = loop
        self._background: set[Future[Any]] = set()

    # the hand-over ------------------------------------------------------------------
    def _ask(self, coro: Coroutine[Any, Any, T], timeout: float = ANSWER_TIMEOUT) -> T:
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        if on_loop:  # waiting here would wait for ourselves
            coro.close()
            raise RuntimeError("node code ran on the server's event loop; it must run on the executor thread")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _started(self) -> bool:
        """Wait for the first scan (a prompt queued while ComfyUI starts), not forever; whether
        there was anything to wait for."""
        if self._services.library.started:
            return False
        try:
            await self._services.library.wait_started(STARTUP_WAIT)
        except asyncio.TimeoutError:
            _log.warning("model library: still scanning after %.0f s; answering from what is indexed", STARTUP_WAIT)
        return True

    def _find(self, model_type: ModelType, name: str) -> list[ModelEntry]:
        """On the loop: entries a workflow name stands for."""
        return self._services.names.find(model_type, name)

    # questions ------------------------------------------------------------------------
    def resolve_loras(self, entries: Sequence[LoraEntry]) -> list[ResolvedLora | None]:
        """Each entry's file, found by name, else by its stored SHA256 (with a warning);
        None for an entry the library does not have."""

        async def resolve() -> list[ResolvedLora | None]:
            found = [self._resolve(entry) for entry in entries]
            if None in found and await self._started():  # the first scan may still bring it
                found = [self._resolve(entry) for entry in entries]
            return found

        return self._ask(resolve())

    def _resolve(self, entry: LoraEntry) -> ResolvedLora | None:
        found = self._find(ModelType.LORA, entry.name)
        if found:
            match = next((e for e in found if entry.sha256 and e.sha256 == entry.sha256), found[0])
            warning = ""
            if len(found) > 1 and not (entry.sha256 and match.sha256 == entry.sha256):
                warning = f"'{entry.name}' matches {len(found)} LoRAs; using '{match.relative_path}'"
            return ResolvedLora(entry=entry.with_name(match.relative_path), file_path=match.file_path,
                                warning=warning)
        moved = self._services.library[ModelType.LORA].find_by_hash(entry.sha256) if entry.sha256 else []
        if not moved:
            return None
        return ResolvedLora(
            entry=entry.with_name(moved[0].relative_path), file_path=moved[0].file_path,
            warning=f"'{entry.name}' is now '{moved[0].relative_path}' (found by its SHA256)",
        )

    def trigger_words(self, names: Sequence[str]) -> dict[str, list[str]]:
        """Name → the LoRA's trigger word entries (the user's own first, then CivitAI's)."""

        async def words() -> dict[str, list[str]]:
            out = {}
            for name in names:
                found = self._find(ModelType.LORA, name)
                if found:
                    entry = found[0]
                    out[name] = merge_trigger_words(entry.trigger_words, entry.civitai.get("trainedWords") or ())
            return out

        return self._ask(words())

    def hashes(self, refs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """(kind, name) → AutoV2 for each model found; one still hashing is hashed first
        (ahead of the background backlog) and waited for, never twice."""

        async def find_all() -> dict[tuple[str, str], ModelEntry]:
            found: dict[tuple[str, str], ModelEntry] = {}
            for kind, name in refs:
                model_type = KINDS.get(kind)
                entries = self._find(model_type, name) if model_type else []
                if entries:
                    found[(kind, name)] = entries[0]
            pending = [e for e in found.values() if not e.sha256]
            if pending:
                fresh = {e.file_path: e for e in await self._services.civitai_sync.ensure_hashed(pending)}
                found = {k: fresh.get(e.file_path, e) for k, e in found.items()}
            return found

        entries = self._ask(find_all(), timeout=HASH_TIMEOUT)
        return {key: entry.autov2 for key, entry in entries.items() if entry.autov2}

    def record_usage(self, refs: Sequence[tuple[str, str]]) -> None:
        """Count a queued prompt's models in the usage history (scheduled on the loop, from
        any thread; the caller does not wait)."""
        typed = [(KINDS[kind], name) for kind, name in refs if kind in KINDS]
        if not typed:
            return
        services = self._services
        future = asyncio.run_coroutine_threadsafe(record_prompt_usage(
            typed, names=services.names, usage=services.usage, civitai_sync=services.civitai_sync,
        ), self._loop)
        self._background.add(future)
        future.add_done_callback(self._recorded)

    def _recorded(self, future: Future[Any]) -> None:
        self._background.discard(future)
        if not future.cancelled() and future.exception() is not None:
            _log.warning("model library: usage not recorded (%s)", future.exception())


_current: NodeLibrary | None = None


def set_node_library(library: NodeLibrary | None) -> None:
    """Called by the ComfyUI host once its services and loop exist."""
    global _current
    _current = library


def node_library() -> NodeLibrary:
    """The library for node code; a clear error when the plugin did not start its services."""
    if _current is None:
        raise RuntimeError("the model library is not running in this ComfyUI (see the log for why it did not start)")
    return _current
