"""What a workflow needs that the library lacks: read the workflow's model references, look each
up in the library, and ask CivitAI for candidates for the missing ones (issue 14).

Owns the order of the flow (read → local look-up → CivitAI) and its limits; it must not format
HTTP nor start downloads (each candidate carries the body of the download route instead).
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from ..library.model_library import ModelLibrary
from ..workflows.model_resolver import ModelResolver, ReferenceStatus, Resolution
from ..workflows.workflow_references import extract_references, workflow_format

_IN_THREAD_ABOVE_NODES = 200  # reading a big workflow is CPU work: off the event loop


@dataclass(slots=True, frozen=True, kw_only=True)
class MissingModelsReport:
    format: str  # "ui" | "api" | "" (parameters only)
    resolutions: tuple[Resolution, ...]
    civitai_error: str = ""  # CivitAI could not be asked: the local answer stands alone

    def count(self, status: ReferenceStatus) -> int:
        return sum(1 for r in self.resolutions if r.status is status)


class FindMissingModelsUseCase:
    """``execute(workflow, parameters)`` → a ``MissingModelsReport``.

    Waits (bounded) for the library's first scan so a just-started server does not call every
    model missing. Never raises for CivitAI trouble (``civitai_error`` says what happened).
    """

    def __init__(self, *, resolver: ModelResolver, library: ModelLibrary, ready_timeout: float = 30.0) -> None:
        self._resolver = resolver
        self._library = library
        self._ready_timeout = ready_timeout

    async def execute(self, workflow: Any, parameters: str | None = None, *, lookup_civitai: bool = True) -> MissingModelsReport:
        fmt = workflow_format(workflow)
        size = len(workflow.get("nodes") or workflow) if isinstance(workflow, dict) else 0
        if size > _IN_THREAD_ABOVE_NODES:
            refs = await asyncio.to_thread(extract_references, workflow, parameters)
        else:
            refs = extract_references(workflow, parameters)
        await self._wait_ready()
        resolutions = self._resolver.resolve(refs)
        error = ""
        if lookup_civitai and any(r.status is ReferenceStatus.MISSING for r in resolutions):
            resolutions, error = await self._resolver.add_candidates(resolutions)
        return MissingModelsReport(format=fmt, resolutions=tuple(resolutions), civitai_error=error)

    async def _wait_ready(self) -> None:
        waits = [self._library[t].wait_ready(self._ready_timeout) for t in self._library]
        results = await asyncio.gather(*waits, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, (asyncio.TimeoutError, TimeoutError)):
                raise result
