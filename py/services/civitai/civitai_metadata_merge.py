"""The merge policy: how CivitAI's answer enters a sidecar, as pure functions (no I/O).

Owns the rules below and the NSFW/preview and model-type helpers; it must not read or write
files, talk to CivitAI or know about the index (callers persist the returned dict).

Merge policy (``merge_civitai_into_sidecar``)
-------------------------------------------
1. CivitAI's data lives under ``civitai``: the version object as CivitAI sent it (files,
   hashes, images, ``trainedWords``, ``baseModel``, ...), with
   ``civitai.model`` = ``{name, type, nsfw, poi}`` enriched from the model response with
   ``tags`` and the licence flags ``allowNoCredit``, ``allowCommercialUse``,
   ``allowDerivatives``, ``allowDifferentLicense``, and ``civitai.creator`` =
   ``{username, image}``. The model's HTML description is kept top-level as
   ``modelDescription`` (the de-facto sidecar format). ``from_civitai`` becomes true and
   ``last_checked_at`` records the time of the refresh.
2. Never replace known data with unknown or worse data: an empty or missing value from
   CivitAI (None, "", [], {}) never overwrites a non-empty stored one, field by field and
   recursively in nested objects. When the stored ``civitai`` block describes the same
   version and has a newer ``updatedAt`` (written by another tool), the stored values win
   and CivitAI's answer only fills gaps. A different version id (a relink) replaces the block.
3. User edits survive. ``user_edited`` is a list of top-level field names the user changed
   through save-metadata (``model_name``, ``tags``, ``notes``, ``trigger_words``,
   ``usage_tips``, ``base_model``, ``preview_url``, ...); a refresh never writes them.
   Independently of that list:
   - ``model_name`` takes the CivitAI model name only when empty or still the file name;
   - ``tags`` take the model's tags only when the sidecar has none;
   - ``trigger_words`` (the user's own), ``notes``, ``usage_tips``, ``favorite``,
     ``exclude`` and the preview fields are never touched: CivitAI's trigger words stay in
     ``civitai.trainedWords`` and listings show both;
   - ``base_model`` is CivitAI's ``baseModel`` normalised by ``normalize_base_model``;
     an empty value or "Other" never replaces a known base model. A sidecar written by
     hand or by another tool (no CivitAI data, no ``user_edited`` list) keeps a base model
     that differs from what the file's header implies (``header_base_model``): someone
     chose it (issue 14).
4. Unknown keys are preserved everywhere; the input dict is never mutated.
5. "Not on CivitAI" (404) never erases anything: ``mark_checked_not_found`` only records the
   check time.

Preview choice: ``choose_preview_image`` takes the first image or video whose ``nsfwLevel``
(bit values PG 1, PG13 2, R 4, X 8, XXX 16, Blocked 32) is at most the threshold from
``nsfw_threshold_from_settings``; unrated images count as XXX, Blocked ones are never chosen.
"""
from __future__ import annotations

import copy
import re
from datetime import datetime
from enum import Enum
from typing import Any

from ..shared.model_types import type_for_prefix
from ..shared.nsfw_levels import NSFW_BLOCKED, NSFW_LEVELS
from ..shared.sidecar_store import user_edited_fields

LICENCE_FLAGS = ("allowNoCredit", "allowCommercialUse", "allowDerivatives", "allowDifferentLicense")

NO_NSFW_LIMIT = NSFW_BLOCKED - 1  # every level but Blocked
DEFAULT_MATURE_BLUR_LEVEL = "R"

# CivitAI model types per library type.
_CIVITAI_TYPES: dict[str, frozenset[str]] = {
    "lora": frozenset({"lora", "locon", "dora", "lycoris"}),
    "checkpoint": frozenset({"checkpoint"}),
    "embedding": frozenset({"textualinversion"}),
}

# Spellings seen in the wild (older API answers, other tools' sidecars) → CivitAI's names.
_BASE_MODEL_ALIASES: dict[str, str] = {
    "sd15": "SD 1.5",
    "sd1": "SD 1.5",
    "sd1.5": "SD 1.5",
    "stablediffusion1.5": "SD 1.5",
    "sd14": "SD 1.4",
    "sd1.4": "SD 1.4",
    "sd2": "SD 2.0",
    "sd2.0": "SD 2.0",
    "sd21": "SD 2.1",
    "sd2.1": "SD 2.1",
    "sdxl": "SDXL 1.0",
    "sdxl1.0": "SDXL 1.0",
    "sdxl10": "SDXL 1.0",
    "pony": "Pony",
    "ponydiffusion": "Pony",
    "ponyv6": "Pony",
    "illustrious": "Illustrious",
    "illustriousxl": "Illustrious",
    "noobai": "NoobAI",
    "flux.1d": "Flux.1 D",
    "flux1d": "Flux.1 D",
    "flux.1dev": "Flux.1 D",
    "flux1dev": "Flux.1 D",
    "flux.1s": "Flux.1 S",
    "flux1s": "Flux.1 S",
    "flux.1schnell": "Flux.1 S",
    "sd3": "SD 3",
    "sd3.5": "SD 3.5",
    "other": "Other",
}


def normalize_base_model(value: Any) -> str:
    """CivitAI's base-model name, tidied: known names kept as is, odd spellings mapped.

    "SD 1.5", "SDXL 1.0", "Pony", "Illustrious", "Flux.1 D" pass through; "sd15", "SDXL",
    "flux.1-dev" become those names; unknown names keep their text with spaces collapsed.
    """
    if not isinstance(value, str):
        return ""
    text = " ".join(value.split())
    key = re.sub(r"[\s_\-]+", "", text.lower())
    return _BASE_MODEL_ALIASES.get(key, text)


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _prefer(winner: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """``winner``'s non-empty values over ``other``'s, recursively; keys of both kept."""
    merged = copy.deepcopy(other)
    for key, value in winner.items():
        current = merged.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            merged[key] = _prefer(value, current)
        elif _is_empty(value) and not _is_empty(current):
            continue
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def _fresh_civitai_block(version: dict[str, Any], model: dict[str, Any] | None) -> dict[str, Any]:
    block = copy.deepcopy(version)
    model_info = dict(block.get("model") or {}) if isinstance(block.get("model"), dict) else {}
    if model:
        if block.get("modelId") is None and model.get("id") is not None:
            block["modelId"] = model["id"]
        for key in ("name", "type", "nsfw", "poi"):
            if _is_empty(model_info.get(key)) and key in model:
                model_info[key] = model[key]
        if isinstance(model.get("tags"), list):
            model_info["tags"] = [str(tag) for tag in model["tags"]]
        for flag in LICENCE_FLAGS:
            if flag in model:
                model_info[flag] = copy.deepcopy(model[flag])
        creator = model.get("creator")
        if isinstance(creator, dict):
            block["creator"] = {"username": creator.get("username"), "image": creator.get("image")}
    if model_info:
        block["model"] = model_info
    return block


def merge_civitai_into_sidecar(
    sidecar: dict[str, Any],
    version: dict[str, Any],
    model: dict[str, Any] | None,
    *,
    now: float,
    header_base_model: str | None = None,
) -> dict[str, Any]:
    """A new sidecar dict with ``version`` (and ``model`` details, if given) merged in by the policy.

    ``header_base_model`` is what the model file's header implies ('' = nothing; None = not
    read, then a hand-chosen base model is not recognised).
    """
    chosen_base = _hand_chosen_base_model(sidecar, header_base_model)
    result = copy.deepcopy(sidecar)
    user_edited = set(user_edited_fields(sidecar))
    fresh = _fresh_civitai_block(version, model)

    stored = sidecar.get("civitai") if isinstance(sidecar.get("civitai"), dict) else {}
    if stored and stored.get("id") is not None and stored.get("id") != fresh.get("id"):
        civitai = fresh  # relinked to another version: the old block describes something else
    elif stored:
        stored_time, fresh_time = _parse_time(stored.get("updatedAt")), _parse_time(fresh.get("updatedAt"))
        if stored_time and fresh_time and stored_time > fresh_time:
            civitai = _prefer(stored, fresh)
        else:
            civitai = _prefer(fresh, stored)
    else:
        civitai = fresh
    result["civitai"] = civitai
    result["from_civitai"] = True
    if "civitai_deleted" in result:
        result["civitai_deleted"] = False
    result["last_checked_at"] = now

    model_info = civitai.get("model") if isinstance(civitai.get("model"), dict) else {}
    civitai_name = (model or {}).get("name") or model_info.get("name")
    current_name = result.get("model_name")
    if (
        "model_name" not in user_edited
        and isinstance(civitai_name, str)
        and civitai_name.strip()
        and (_is_empty(current_name) or current_name == result.get("file_name"))
    ):
        result["model_name"] = civitai_name.strip()

    civitai_tags = model_info.get("tags")
    if "tags" not in user_edited and _is_empty(result.get("tags")) and civitai_tags:
        result["tags"] = list(civitai_tags)

    if chosen_base:
        pass  # written by hand or another tool: never replaced by CivitAI's
    elif "base_model" not in user_edited or _is_empty(result.get("base_model")):
        mapped = normalize_base_model(version.get("baseModel"))
        current = result.get("base_model")
        if mapped and (mapped != "Other" or _is_empty(current)):
            result["base_model"] = mapped

    description = (model or {}).get("description")
    if "modelDescription" not in user_edited and isinstance(description, str) and description.strip():
        result["modelDescription"] = description
    return result


def _hand_chosen_base_model(sidecar: dict[str, Any], header_base_model: str | None) -> bool:
    """A base model someone chose: in a sidecar without CivitAI data or ``user_edited``
    list, and not what the header implies (ours always writes the header's guess)."""
    current = sidecar.get("base_model")
    if header_base_model is None or not isinstance(current, str) or not current.strip():
        return False
    if sidecar.get("user_edited"):
        return False
    stored = sidecar.get("civitai")
    if sidecar.get("from_civitai") or (isinstance(stored, dict) and stored.get("id") is not None):
        return False
    return normalize_base_model(current) != normalize_base_model(header_base_model)


def mark_checked_not_found(sidecar: dict[str, Any], *, now: float) -> dict[str, Any]:
    """A new sidecar recording that CivitAI did not know the file; nothing else changes."""
    result = copy.deepcopy(sidecar)
    result["last_checked_at"] = now
    return result


def image_nsfw_level(image: dict[str, Any]) -> int:
    """The image's NSFW bit value; unrated images count as XXX (shown only without a limit)."""
    level = image.get("nsfwLevel")
    if isinstance(level, int) and not isinstance(level, bool) and level > 0:
        return level
    legacy = image.get("nsfw")  # older answers: boolean or None/Soft/Mature/X
    legacy_levels = {False: 1, "None": 1, "Soft": 2, "Mature": 4, "X": 8, True: 8}
    if isinstance(legacy, (bool, str)) and legacy in legacy_levels:
        return legacy_levels[legacy]
    return NSFW_LEVELS["XXX"]


def choose_preview_image(
    version: dict[str, Any], *, max_nsfw_level: int, allow_video: bool = True
) -> dict[str, Any] | None:
    """The first image (or video) of the version at or below ``max_nsfw_level``; None if none."""
    for image in version.get("images") or ():
        if not isinstance(image, dict) or not image.get("url"):
            continue
        if not allow_video and image.get("type") == "video":
            continue
        level = image_nsfw_level(image)
        if level & NSFW_BLOCKED:
            continue
        if level <= max_nsfw_level:
            return image
    return None


def nsfw_threshold_from_settings(blur_mature_content: bool, mature_blur_level: str) -> int:
    """The highest NSFW value a preview may have, from the two settings.

    ``blur_mature_content`` off → no limit (everything but Blocked, 31). On → content at or
    above ``mature_blur_level`` (one of 'PG', 'PG13', 'R', 'X', 'XXX'; 'PG-13' accepted;
    unknown → 'R') is excluded, e.g. 'R' → 3 (PG and PG13 allowed), 'PG' → 0 (none).
    """
    if not blur_mature_content:
        return NO_NSFW_LIMIT
    name = re.sub(r"[^A-Z0-9]", "", str(mature_blur_level or "").upper())
    level = NSFW_LEVELS.get(name, NSFW_LEVELS[DEFAULT_MATURE_BLUR_LEVEL])
    return level - 1


def civitai_model_type_matches(model_type_str: str, our_type: str | Enum) -> bool:
    """Whether a CivitAI model type belongs to our library type ('lora', 'checkpoint', 'embedding').

    LORA, LoCon, DoRA (and LyCORIS) → 'lora'; Checkpoint → 'checkpoint';
    TextualInversion → 'embedding'. Case-insensitive; plural prefixes ('loras') accepted.
    """
    ours = our_type.value if isinstance(our_type, Enum) else str(our_type)
    ours = ours.strip().lower()
    if ours.endswith("s") and ours[:-1] in _CIVITAI_TYPES:
        ours = ours[:-1]
    named = type_for_prefix(ours)  # every other type by value or prefix (vae, vaes, upscalers ...)
    allowed = _CIVITAI_TYPES.get(ours) or (named.spec.civitai_types if named is not None else None)
    if not allowed or not isinstance(model_type_str, str):
        return False
    return model_type_str.strip().lower() in allowed
