"""Trigger words of LoRAs as prompt text: merging a model's lists (the user's own, then
CivitAI's), joining, and switching words (or comma groups) off. Pure functions.

A model's trigger words are entries: a word ("alpha girl") or, from CivitAI, a comma group
("blue hair, long hair, ribbon"). Entries are joined with ", " into prompt text; switching an
entry off removes its words from that text, so it works on the text alone, whatever node made it.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["apply_toggles", "join_entries", "merge_trigger_words", "split_words"]

SEPARATOR = ", "


def _key(text: str) -> str:
    return " ".join(text.split()).casefold()


def merge_trigger_words(*lists: Iterable[str]) -> list[str]:
    """The entries of every list in order (the user's own first, then CivitAI's), each once
    (case and spacing do not make a second one); empty entries dropped."""
    seen: set[str] = set()
    merged: list[str] = []
    for entries in lists:
        for entry in entries:
            text = " ".join(str(entry).split()).strip(" ,")
            if text and _key(text) not in seen:
                seen.add(_key(text))
                merged.append(text)
    return merged


def join_entries(entries: Iterable[str]) -> str:
    return SEPARATOR.join(e for e in entries if e)


def split_words(text: str) -> list[str]:
    """The words of prompt text split at commas (what a chip shows when no groups are known)."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def apply_toggles(text: str, disabled: Sequence[str]) -> str:
    """``text`` without the words of every ``disabled`` entry (a word or a comma group),
    joined with ", " again. An entry matches as a whole run of words, case-insensitively."""
    words = split_words(text)
    keys = [_key(w) for w in words]
    drop = [False] * len(words)
    for entry in disabled:
        run = [_key(w) for w in split_words(entry)]
        if not run:
            continue
        for start in range(len(keys) - len(run) + 1):
            if keys[start : start + len(run)] == run and not any(drop[start : start + len(run)]):
                for i in range(start, start + len(run)):
                    drop[i] = True
    return join_entries(w for w, gone in zip(words, drop) if not gone)
