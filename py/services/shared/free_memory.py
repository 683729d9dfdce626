"""Hand the C allocator's free memory back to the system after a big load or scan.

A scan parses thousands of sidecars in worker threads; glibc keeps what they freed in its
heaps (one per thread) for later, so the process stays as big as its busiest moment.
``malloc_trim`` returns the free pages; elsewhere (macOS, Windows, musl) this does nothing.
"""
from __future__ import annotations

import ctypes
import sys
from typing import Callable


def _find_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the process's own C library
    except (OSError, AttributeError):  # musl has no malloc_trim
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_trim = _find_trim()


def release_free_memory() -> bool:
    """Give free heap pages back to the system; True when some were.

    Blocking for a few milliseconds on a big heap (without the GIL): call it through
    ``asyncio.to_thread`` from async code.
    """
    if _trim is None:
        return False
    return bool(_trim(0))
