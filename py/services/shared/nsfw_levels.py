"""CivitAI's content levels: their names (the settings' blur level) and their bits (images and
previews carry a bit mask, "PG" 1 ... "XXX" 16, "Blocked" 32; 0 is unrated).

Owns the vocabulary only; which level a preview may have is the CivitAI merge's policy.
"""
from __future__ import annotations

NSFW_LEVELS: dict[str, int] = {"PG": 1, "PG13": 2, "R": 4, "X": 8, "XXX": 16}
NSFW_LEVEL_NAMES: tuple[str, ...] = tuple(NSFW_LEVELS)
NSFW_BLOCKED = 32
MAX_NSFW_LEVEL = 63  # every bit set
