"""Verifying suspected duplicates by re-hashing them, and correcting wrong stored hashes.

Owns the re-hash (``hash_file`` in a worker thread, one file at a time) and the repair of
a stored SHA-256 that does not match the bytes (sidecar, hash store, index and cache);
it must not decide what to do with real duplicates (the user does).
"""
from __future__ import annotations

import asyncio
import logging
import os

from ..library.model_hasher import hash_file
from ..library.model_library import ModelLibrary
from ..library.model_records import ModelType
from ..library.model_scanner import stamp_of
from ..library.type_library import HashStore
from ..shared.model_locks import ModelLocks
from ..shared.sidecar_store import SidecarStore
from .mutation_records import DuplicateVerification, HashCheck

_log = logging.getLogger(__name__)


class HashVerificationService:
    """Re-hashes models off the event loop and fixes hashes that were stored wrong."""

    def __init__(self, *, library: ModelLibrary, locks: ModelLocks, hashes: HashStore) -> None:
        self._library = library
        self._locks = locks
        self._hashes = hashes

    async def verify_duplicates(self, model_type: ModelType, paths: list[str]) -> DuplicateVerification:
        """Hash every model of ``paths``; group the really identical ones.

        A model not in the index, or unreadable, gets an ``error`` in its check. A stored
        SHA-256 that differs from the bytes is replaced in the sidecar (when it holds one),
        the hash store, the index and the cache; broadcasts ``models_changed`` then.
        """
        service = self._library[model_type]
        checks: list[HashCheck] = []
        for path in dict.fromkeys(paths):
            entry = service.index.get(path)
            if entry is None:
                checks.append(HashCheck(file_path=path, stored_sha256="", error=f"no {model_type.value} at '{path}'"))
                continue
            async with self._locks.hold(path):
                try:
                    before = await asyncio.to_thread(os.stat, path)
                    hashes = await asyncio.to_thread(hash_file, path)
                    after = await asyncio.to_thread(os.stat, path)
                except OSError as exc:
                    checks.append(HashCheck(file_path=path, stored_sha256=entry.sha256, error=f"cannot read '{path}': {exc.strerror or exc}"))
                    continue
                if stamp_of(before) != stamp_of(after):
                    checks.append(HashCheck(file_path=path, stored_sha256=entry.sha256, error="the file changed while it was hashed"))
                    continue
                check = HashCheck(file_path=path, stored_sha256=entry.sha256, actual_sha256=hashes.sha256)
                checks.append(check)
                if check.fixed or entry.autov2 != hashes.autov2:
                    await self._hashes.remember(stamp_of(after), hashes.sha256, hashes.autov2)
                    await asyncio.to_thread(_fix_sidecar_hash, self._library.sidecars, path, hashes.sha256)
                    await service.refresh_paths([path], reason="hash_fixed")
        groups: dict[str, list[str]] = {}
        for check in checks:
            if check.actual_sha256:
                groups.setdefault(check.actual_sha256, []).append(check.file_path)
        return DuplicateVerification(
            checks=tuple(checks), groups={h: p for h, p in groups.items() if len(p) > 1}
        )


def _fix_sidecar_hash(sidecars: SidecarStore, model_path: str, sha256: str) -> None:
    # a .civitai.info hash is fixed by writing a sidecar
    read = sidecars.read(model_path)
    if read.corrupt or read.refused or "sha256" not in read.data:
        return  # the index took its hash from the hash store, fixed already
    if str(read.data.get("sha256") or "").lower() == sha256:
        return
    data = dict(read.data)
    data["sha256"] = sha256
    sidecars.write(model_path, data)
    _log.info("corrected the stored sha256 of %s", model_path)
