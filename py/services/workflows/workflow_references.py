"""The models a ComfyUI workflow references, read from its JSON in either format: the UI format
the editor saves (``{"nodes": [{"id", "type", "widgets_values"}, ...]}``, subgraphs included)
or the API format a prompt is queued in (``{id: {"class_type", "inputs"}}``), plus the hashes an
image's A1111 ``parameters`` text carries (``Model hash``, ``Lora hashes``, ``TI hashes``).

Pure functions and records (no I/O, no library): core loaders, our loader and stacker, common
``LORA_STACK`` packs, rgthree's dict widgets, ``<lora:…>`` text and ``embedding:`` names in
prompts. Loaders of kinds the library does not manage (VAE, ControlNet, …) come out as
``other``. It must not look anything up: that is the resolver's job.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from .lora_list import LORA_SYNTAX, read_leniently

__all__ = [
    "ReferenceKind", "ReferenceUse", "WorkflowReference", "extract_references", "parse_parameters_hashes",
    "workflow_format",
]

MODEL_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft", ".pt2", ".onnx")
OUR_LOADERS = frozenset({"LmLoraLoader", "LmLoraStacker"})
_NOT_PROMPTS = frozenset({"Note", "MarkdownNote", "PrimitiveNode", "Reroute"})
EMBEDDING = re.compile(r"embedding:([^\s,()\[\]{}<>:]+)", re.IGNORECASE)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SHORT_HASH = re.compile(r"^[0-9a-f]{8,12}$")
_NUMBERED_LORA = re.compile(r"^lora_?(?:name_)?(\d+)$")  # lora_name_1 (Efficiency, Comfyroll), lora_01 (rgthree)
MAX_NODES = 20_000
MAX_TEXT = 200_000  # characters of one prompt text searched for names


class ReferenceKind(str, Enum):
    LORA = "lora"
    CHECKPOINT = "checkpoint"  # checkpoints and diffusion models (``sub_type`` says which)
    EMBEDDING = "embedding"
    OTHER = "other"  # a loader of a kind the library does not manage


class ReferenceSource(str, Enum):
    WIDGET = "widget"  # a loader's widget (UI) or input (API) holds the name
    LORA_LIST = "lora_list"  # an entry of our loader's ``loras`` list
    DICT = "dict"  # a dict widget (``{"on", "lora", "strength"}``, rgthree's Power Lora Loader)
    TEXT = "text"  # ``<lora:name:…>`` or ``embedding:name`` inside prompt text
    PARAMETERS = "parameters"  # only the image's A1111 ``parameters`` text names it


@dataclass(slots=True, frozen=True, kw_only=True)
class ReferenceUse:
    """One place of the workflow that names the model (what "Use this file" rewrites)."""

    source: ReferenceSource
    node_id: str | None = None
    node_type: str = ""
    widget: str = ""  # the widget / input name, '' when the UI format does not say
    widget_index: int | None = None  # the position in ``widgets_values`` (UI format)
    entry_index: int | None = None  # the entry of our ``loras`` list
    subgraph: str = ""  # the id of the subgraph definition holding the node ('' = the root graph)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source.value, "node_id": self.node_id, "node_type": self.node_type,
            "widget": self.widget, "widget_index": self.widget_index, "entry_index": self.entry_index,
            "subgraph": self.subgraph,
        }


@dataclass(slots=True, frozen=True, kw_only=True)
class WorkflowReference:
    """A model the workflow names, once, with every place that names it."""

    kind: ReferenceKind
    name: str  # as the workflow writes it ('/' separated)
    sub_type: str = ""  # "diffusion_model" for UNETLoader and the like
    folder: str = ""  # ComfyUI's folder name for ``other`` loaders ("vae", "controlnet", ...)
    sha256: str = ""  # lower-case, from our loader's entries or the workflow's ``models`` list
    short_hash: str = ""  # AutoV2 (or another 8-12 hex hash CivitAI knows) from ``parameters``
    urls: tuple[str, ...] = ()  # download links the workflow itself lists for the file
    uses: tuple[ReferenceUse, ...] = ()

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind.value, _fold(self.name), self.sub_type)


def _fold(name: str) -> str:
    return name.replace("\\", "/").strip().strip("/").casefold()


def stem_of(name: str) -> str:
    base = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    lower = base.lower()
    for extension in MODEL_EXTENSIONS:
        if lower.endswith(extension):
            return base[: -len(extension)]
    return base


_NOT_IN_FILE_NAMES = re.compile(r"[<>\n\r(),:]")  # prompt text, not a file name


def _looks_like_model_file(value: Any) -> bool:
    return (isinstance(value, str) and 0 < len(value) < 1024 and value.lower().endswith(MODEL_EXTENSIONS)
            and not _NOT_IN_FILE_NAMES.search(value))


# -- what each known loader's widgets / inputs are ------------------------------------------

@dataclass(slots=True, frozen=True)
class _Slot:
    widget: str
    index: int  # position in widgets_values
    kind: ReferenceKind
    sub_type: str = ""
    folder: str = ""


_C, _L, _O = ReferenceKind.CHECKPOINT, ReferenceKind.LORA, ReferenceKind.OTHER
_DIFFUSION = "diffusion_model"
KNOWN_LOADERS: dict[str, tuple[_Slot, ...]] = {
    "CheckpointLoaderSimple": (_Slot("ckpt_name", 0, _C),),
    "CheckpointLoader": (_Slot("config_name", 0, _O, folder="configs"), _Slot("ckpt_name", 1, _C)),
    "unCLIPCheckpointLoader": (_Slot("ckpt_name", 0, _C),),
    "ImageOnlyCheckpointLoader": (_Slot("ckpt_name", 0, _C),),
    "UNETLoader": (_Slot("unet_name", 0, _C, _DIFFUSION),),
    "UnetLoaderGGUF": (_Slot("unet_name", 0, _C, _DIFFUSION),),
    "LoraLoader": (_Slot("lora_name", 0, _L),),
    "LoraLoaderModelOnly": (_Slot("lora_name", 0, _L),),
    "VAELoader": (_Slot("vae_name", 0, _O, folder="vae"),),
    "ControlNetLoader": (_Slot("control_net_name", 0, _O, folder="controlnet"),),
    "DiffControlNetLoader": (_Slot("control_net_name", 0, _O, folder="controlnet"),),
    "UpscaleModelLoader": (_Slot("model_name", 0, _O, folder="upscale_models"),),
    "CLIPLoader": (_Slot("clip_name", 0, _O, folder="text_encoders"),),
    "DualCLIPLoader": (_Slot("clip_name1", 0, _O, folder="text_encoders"),
                       _Slot("clip_name2", 1, _O, folder="text_encoders")),
    "TripleCLIPLoader": (_Slot("clip_name1", 0, _O, folder="text_encoders"), _Slot("clip_name2", 1, _O, folder="text_encoders"),
                         _Slot("clip_name3", 2, _O, folder="text_encoders")),
    "CLIPVisionLoader": (_Slot("clip_name", 0, _O, folder="clip_vision"),),
    "StyleModelLoader": (_Slot("style_model_name", 0, _O, folder="style_models"),),
    "GLIGENLoader": (_Slot("gligen_name", 0, _O, folder="gligen"),),
    "HypernetworkLoader": (_Slot("hypernetwork_name", 0, _O, folder="hypernetworks"),),
    "PhotoMakerLoader": (_Slot("photomaker_model_name", 0, _O, folder="photomaker"),),
}
# API-format input names, whatever the node (the UI format has no names: see _ui_node)
_INPUT_KINDS: dict[str, tuple[ReferenceKind, str, str]] = {
    "ckpt_name": (_C, "", ""),
    "unet_name": (_C, _DIFFUSION, ""),
    "lora_name": (_L, "", ""),
    "vae_name": (_O, "", "vae"),
    "control_net_name": (_O, "", "controlnet"),
    "clip_name": (_O, "", "text_encoders"),
    "clip_name1": (_O, "", "text_encoders"),
    "clip_name2": (_O, "", "text_encoders"),
    "clip_name3": (_O, "", "text_encoders"),
    "style_model_name": (_O, "", "style_models"),
    "gligen_name": (_O, "", "gligen"),
    "hypernetwork_name": (_O, "", "hypernetworks"),
    "photomaker_model_name": (_O, "", "photomaker"),
}


def _kind_from_type(node_type: str) -> tuple[ReferenceKind, str]:
    """A best guess for a loader the tables do not know, from its class name."""
    lower = node_type.lower()
    if "lora" in lower or "lycoris" in lower:
        return _L, ""
    if "unet" in lower or "diffusion" in lower:
        return _C, _DIFFUSION
    if "checkpoint" in lower or "ckpt" in lower:
        return _C, ""
    return _O, ""


# -- our loader's list (lora_list.py, read leniently) -----------------------------------

def _lora_list_entries(value: Any) -> list[tuple[int, str, str, bool]]:
    """(position, name, sha256, active) of a ``loras`` value: JSON list / ``{"entries"}`` or
    ``<lora:…>`` text; a value that does not read gives nothing (the node reports it)."""
    return [(i, e.name, e.sha256, e.active) for i, e in read_leniently(value, max_text=MAX_TEXT)]


def _looks_like_lora_list(value: Any) -> bool:
    if not isinstance(value, str):
        return isinstance(value, (list, dict)) and bool(_lora_list_entries(value))
    text = value.strip()
    return bool(text) and (text[0] in "[{" or "<lora:" in text.lower()) and bool(_lora_list_entries(text))


# -- one found name ----------------------------------------------------------------------

@dataclass(slots=True)
class _Found:
    kind: ReferenceKind
    name: str
    use: ReferenceUse
    sub_type: str = ""
    folder: str = ""
    sha256: str = ""


def _text_refs(text: str, use: ReferenceUse) -> Iterator[_Found]:
    text = text[:MAX_TEXT]
    for match in LORA_SYNTAX.finditer(text):
        yield _Found(_L, match.group(1).strip(), replace(use, source=ReferenceSource.TEXT))
    for match in EMBEDDING.finditer(text):
        name = match.group(1).rstrip(".")
        if name:
            yield _Found(ReferenceKind.EMBEDDING, name, replace(use, source=ReferenceSource.TEXT))


def _dict_ref(value: Mapping[str, Any], use: ReferenceUse) -> _Found | None:
    """rgthree's ``{"on": true, "lora": "x.safetensors", "strength": 1}`` widget values."""
    name = value.get("lora")
    if isinstance(name, str) and name and name != "None":
        return _Found(_L, name, replace(use, source=ReferenceSource.DICT))
    return None


def _ui_node(node: Mapping[str, Any], subgraph: str) -> Iterator[_Found]:
    node_type = str(node.get("type") or "")
    node_id = str(node.get("id")) if node.get("id") is not None else None
    values = node.get("widgets_values")
    if isinstance(values, dict):  # a few packs store widgets by name
        items: list[tuple[int | None, str, Any]] = [(None, str(k), v) for k, v in values.items()]
    elif isinstance(values, list):
        items = [(i, "", v) for i, v in enumerate(values)]
    else:
        items = []
    names = _widget_names(node)
    base = ReferenceUse(source=ReferenceSource.WIDGET, node_id=node_id, node_type=node_type, subgraph=subgraph)
    known = {slot.index: slot for slot in KNOWN_LOADERS.get(node_type, ())}
    for index, key, value in items:
        widget = key or (known[index].widget if index in known else names.get(index, ""))
        use = replace(base, widget=widget, widget_index=index)
        if node_type in OUR_LOADERS and _looks_like_lora_list(value):
            for position, name, sha, _active in _lora_list_entries(value):
                yield _Found(_L, name, replace(use, source=ReferenceSource.LORA_LIST, widget=widget or "loras",
                                               entry_index=position), sha256=sha)
            continue
        if index in known:
            slot = known[index]
            if isinstance(value, str) and value and value != "None":
                yield _Found(slot.kind, value, use, slot.sub_type, slot.folder)
            continue
        if isinstance(value, dict):
            found = _dict_ref(value, use)
            if found is not None:
                yield found
            continue
        if not isinstance(value, str) or not value:
            continue
        by_name = _INPUT_KINDS.get(widget) if widget else None
        if by_name is not None and value != "None":
            yield _Found(by_name[0], value, use, by_name[1], by_name[2])
        elif _looks_like_model_file(value):
            numbered = bool(widget and _NUMBERED_LORA.match(widget))
            kind, sub_type = (_L, "") if numbered else _kind_from_type(node_type)
            yield _Found(kind, value, use, sub_type)
        elif node_type not in _NOT_PROMPTS:
            yield from _text_refs(value, use)


def _widget_names(node: Mapping[str, Any]) -> dict[int, str]:
    """Widget names by position, where the saved node says (frontends ≥ 1.16 list every
    widget as an input with ``widget.name``, in widget order)."""
    names: dict[int, str] = {}
    position = 0
    for item in node.get("inputs") or ():
        if isinstance(item, dict) and isinstance(item.get("widget"), dict):
            name = item["widget"].get("name")
            if isinstance(name, str):
                names[position] = name
            position += 1
    return names


def _api_node(node_id: str, node: Mapping[str, Any]) -> Iterator[_Found]:
    node_type = str(node.get("class_type") or "")
    inputs = node.get("inputs") if isinstance(node.get("inputs"), dict) else {}
    base = ReferenceUse(source=ReferenceSource.WIDGET, node_id=node_id, node_type=node_type)
    for key, value in inputs.items():
        use = replace(base, widget=str(key))
        if key == "loras" and node_type in OUR_LOADERS:
            for position, name, sha, _active in _lora_list_entries(value):
                yield _Found(_L, name, replace(use, source=ReferenceSource.LORA_LIST, entry_index=position), sha256=sha)
            continue
        if isinstance(value, dict):
            found = _dict_ref(value, use)
            if found is not None:
                yield found
            continue
        if not isinstance(value, str) or not value or value == "None":
            continue
        slot = next((s for s in KNOWN_LOADERS.get(node_type, ()) if s.widget == key), None)
        by_name = _INPUT_KINDS.get(key)
        if slot is not None:
            yield _Found(slot.kind, value, use, slot.sub_type, slot.folder)
        elif by_name is not None:
            yield _Found(by_name[0], value, use, by_name[1], by_name[2])
        elif _NUMBERED_LORA.match(key) and _looks_like_model_file(value):
            yield _Found(_L, value, use)
        elif _looks_like_model_file(value):
            kind, sub_type = _kind_from_type(node_type)
            yield _Found(kind, value, use, sub_type)
        else:
            yield from _text_refs(value, use)


def workflow_format(workflow: Any) -> str:
    """``"ui"``, ``"api"`` or ``""`` (neither: nothing to read)."""
    if isinstance(workflow, dict):
        if isinstance(workflow.get("nodes"), list):
            return "ui"
        if workflow and all(isinstance(v, dict) and "class_type" in v for v in workflow.values()):
            return "api"
        if isinstance(workflow.get("prompt"), dict):
            return "api"
    return ""


def _ui_nodes(workflow: Mapping[str, Any]) -> Iterator[tuple[Mapping[str, Any], str]]:
    for node in workflow.get("nodes") or ():
        if isinstance(node, dict):
            yield node, ""
    definitions = workflow.get("definitions")
    for sub in (definitions.get("subgraphs") if isinstance(definitions, dict) else None) or ():
        if isinstance(sub, dict):
            for node in sub.get("nodes") or ():
                if isinstance(node, dict):
                    yield node, str(sub.get("id") or "")


def _listed_models(workflow: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The ``models`` lists the frontend reads (top level and per node): name, url, hash."""
    listed = [m for m in workflow.get("models") or () if isinstance(m, dict)]
    for node, _sub in _ui_nodes(workflow):
        props = node.get("properties")
        if isinstance(props, dict):
            listed += [m for m in props.get("models") or () if isinstance(m, dict)]
    return listed


# -- the A1111 parameters text --------------------------------------------------------------

@dataclass(slots=True, frozen=True, kw_only=True)
class ParametersHashes:
    """What an A1111 ``parameters`` text says about the models that made the image."""

    model_name: str = ""
    model_hash: str = ""
    loras: dict[str, str] = field(default_factory=dict)  # casefolded name -> hash
    embeddings: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # casefolded -> the name as written


def _hash_list(text: str) -> list[tuple[str, str]]:
    pairs = []
    for part in text.split(","):
        name, sep, value = part.rpartition(":")
        value = value.strip().lower()
        if sep and name.strip() and (_SHORT_HASH.match(value) or _SHA256.match(value)):
            pairs.append((name.strip(), value))
    return pairs


def parse_parameters_hashes(parameters: str) -> ParametersHashes:
    """``Model hash``/``Model``, ``Lora hashes: "a: h, b: h"``, ``TI hashes`` and CivitAI's
    ``Hashes: {"model": h, "lora:a": h, "embed:b": h}`` from a ``parameters`` text."""
    text = (parameters or "")[:MAX_TEXT]
    lines = text.strip().splitlines()
    settings = lines[-1] if lines else ""
    model_hash = _field(settings, "Model hash")
    model_name = _field(settings, "Model")
    loras: dict[str, str] = {}
    embeddings: dict[str, str] = {}
    names: dict[str, str] = {}
    for label, target in (("Lora hashes", loras), ("TI hashes", embeddings)):
        match = re.search(rf'{label}:\s*"([^"]*)"', text)
        for name, value in _hash_list(match.group(1)) if match else ():
            target[name.casefold()] = value
            names[name.casefold()] = name
    match = re.search(r"Hashes:\s*(\{[^}]*\})", text)
    if match:
        try:
            data = json.loads(match.group(1))
        except ValueError:
            data = {}
        for key, value in (data.items() if isinstance(data, dict) else ()):
            value = str(value).strip().lower()
            if not (_SHORT_HASH.match(value) or _SHA256.match(value)):
                continue
            kind, _, name = str(key).partition(":")
            if kind == "model" and not name:
                model_hash = model_hash or value
            elif kind == "lora" and name:
                loras.setdefault(name.casefold(), value)
                names.setdefault(name.casefold(), name)
            elif kind in ("embed", "embedding", "ti") and name:
                embeddings.setdefault(name.casefold(), value)
                names.setdefault(name.casefold(), name)
    hash_value = model_hash.strip().lower()
    return ParametersHashes(
        model_name=model_name.strip(),
        model_hash=hash_value if (_SHORT_HASH.match(hash_value) or _SHA256.match(hash_value)) else "",
        loras=loras, embeddings=embeddings, names=names,
    )


def _field(settings: str, label: str) -> str:
    match = re.search(rf"(?:^|,\s*){re.escape(label)}:\s*([^,\"]+)", settings)
    return match.group(1).strip() if match else ""


# -- putting it together -------------------------------------------------------------------

def extract_references(workflow: Any, parameters: str | None = None) -> list[WorkflowReference]:
    """Every model ``workflow`` (UI or API format, or None) and ``parameters`` reference, once
    per kind and name, in the order they first appear; hashes attached where known."""
    found: list[_Found] = []
    fmt = workflow_format(workflow)
    listed: list[Mapping[str, Any]] = []
    if fmt == "ui":
        for count, (node, subgraph) in enumerate(_ui_nodes(workflow)):
            if count >= MAX_NODES:
                break
            found += _ui_node(node, subgraph)
        listed = _listed_models(workflow)
    elif fmt == "api":
        prompt = workflow.get("prompt") if isinstance(workflow.get("prompt"), dict) else workflow
        for count, (node_id, node) in enumerate(prompt.items()):
            if count >= MAX_NODES:
                break
            if isinstance(node, dict):
                found += _api_node(str(node_id), node)
    refs = _grouped(found)
    refs = _with_listed(refs, listed)
    if parameters:
        refs = _with_parameters(refs, parse_parameters_hashes(parameters))
    return refs


def _grouped(found: Iterable[_Found]) -> list[WorkflowReference]:
    groups: dict[tuple[str, str, str], WorkflowReference] = {}
    for item in found:
        name = item.name.replace("\\", "/").strip()
        if not name:
            continue
        ref = WorkflowReference(kind=item.kind, name=name, sub_type=item.sub_type, folder=item.folder,
                                sha256=item.sha256, uses=(item.use,))
        existing = groups.get(ref.key)
        if existing is None:
            groups[ref.key] = ref
        else:
            groups[ref.key] = replace(existing, uses=existing.uses + (item.use,), sha256=existing.sha256 or item.sha256)
    return list(groups.values())


def _with_listed(refs: list[WorkflowReference], listed: list[Mapping[str, Any]]) -> list[WorkflowReference]:
    if not listed:
        return refs
    by_file: dict[str, list[Mapping[str, Any]]] = {}
    for model in listed:
        name = model.get("name")
        if isinstance(name, str) and name:
            by_file.setdefault(name.replace("\\", "/").rsplit("/", 1)[-1].casefold(), []).append(model)
    out = []
    for ref in refs:
        matches = by_file.get(ref.name.rsplit("/", 1)[-1].casefold(), [])
        sha = ref.sha256
        urls = list(ref.urls)
        for model in matches:
            value = str(model.get("hash") or "").strip().lower()
            if not sha and _SHA256.match(value) and str(model.get("hash_type") or "sha256").lower() == "sha256":
                sha = value
            url = model.get("url")
            if isinstance(url, str) and url.startswith("https://") and url not in urls:
                urls.append(url)
        out.append(replace(ref, sha256=sha, urls=tuple(urls)))
    return out


def _with_parameters(refs: list[WorkflowReference], hashes: ParametersHashes) -> list[WorkflowReference]:
    out: list[WorkflowReference] = []
    used: set[tuple[str, str]] = set()
    checkpoints = [r for r in refs if r.kind is ReferenceKind.CHECKPOINT]
    for ref in refs:
        stem = stem_of(ref.name).casefold()
        value = ""
        if ref.kind is ReferenceKind.LORA and stem in hashes.loras:
            value = hashes.loras[stem]
            used.add(("lora", stem))
        elif ref.kind is ReferenceKind.EMBEDDING and stem in hashes.embeddings:
            value = hashes.embeddings[stem]
            used.add(("embedding", stem))
        elif ref.kind is ReferenceKind.CHECKPOINT and hashes.model_hash:
            if stem == hashes.model_name.casefold() or len(checkpoints) == 1:
                value = hashes.model_hash
                used.add(("checkpoint", ""))
        if value and _SHA256.match(value) and not ref.sha256:
            out.append(replace(ref, sha256=value))
        elif value and not ref.short_hash:
            out.append(replace(ref, short_hash=value))
        else:
            out.append(ref)
    # models only the parameters name (an A1111 image, or a workflow that lost a node)
    extra: list[tuple[ReferenceKind, str, str]] = []
    if hashes.model_hash and ("checkpoint", "") not in used and (hashes.model_name or not checkpoints):
        extra.append((_C, hashes.model_name or hashes.model_hash, hashes.model_hash))
    extra += [(_L, hashes.names[k], v) for k, v in hashes.loras.items() if ("lora", k) not in used]
    extra += [(ReferenceKind.EMBEDDING, hashes.names[k], v) for k, v in hashes.embeddings.items()
              if ("embedding", k) not in used]
    use = (ReferenceUse(source=ReferenceSource.PARAMETERS),)
    for kind, name, value in extra:
        sha, short = (value, "") if _SHA256.match(value) else ("", value)
        out.append(WorkflowReference(kind=kind, name=name, sha256=sha, short_hash=short, uses=use))
    return out
