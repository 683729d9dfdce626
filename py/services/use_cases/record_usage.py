"""Recording what a queued prompt uses: the models it names, found in the library by the names
workflows use, counted once each by SHA256 (a model not hashed yet is hashed first, at the
front of the queue, so the use is never lost nor counted under a path).
"""
from __future__ import annotations

import time
from collections.abc import Sequence

from ..civitai.civitai_sync_service import CivitaiSyncService
from ..library.model_names import LibraryNames
from ..shared.model_types import ModelType
from ..usage.usage_history import UsageHistory

__all__ = ["record_prompt_usage"]


async def record_prompt_usage(
    refs: Sequence[tuple[ModelType, str]], *, names: LibraryNames, usage: UsageHistory,
    civitai_sync: CivitaiSyncService, when: float | None = None,
) -> int:
    """Count one use of each library model ``refs`` name; returns how many were counted."""
    when = time.time() if when is None else when  # the time it was queued, not hashed
    entries = {e.file_path: e for model_type, name in refs if (e := names.first(model_type, name)) is not None}
    hashed = [e for e in entries.values() if e.sha256]
    pending = [e for e in entries.values() if not e.sha256]
    if pending:
        hashed += [e for e in await civitai_sync.ensure_hashed(pending) if e.sha256]
    await usage.record([e.sha256 for e in hashed], when=when)
    return len({e.sha256 for e in hashed})
