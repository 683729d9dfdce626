"""The A1111-style ``parameters`` text of an image, read from the executed prompt graph: the
prompt and negative prompt, sampler settings, size, and the hashes of the models that made it
(``Model hash``, ``Lora hashes``, ``TI hashes``), which is what CivitAI reads to credit them.

Pure: the graph is ComfyUI's API-format prompt (``{id: {"class_type", "inputs"}}``); hashes and
the outputs our own nodes computed come from callbacks. It knows core nodes, our nodes and the
common ``LORA_STACK`` packs; anything else is followed as far as it can be, best effort.
"""
from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .lora_list import LoraListError, parse_lora_list, parse_lora_syntax

__all__ = ["GenerationParams", "ModelRef", "collect_generation", "parameters_text", "prompt_model_refs"]

Prompt = Mapping[str, Mapping[str, Any]]
HashOf = Callable[[str, str], "str | None"]  # (kind: checkpoint | lora | embedding, ComfyUI name) -> AutoV2
ExecutedOutput = Callable[[str, "int | str"], Any]  # (node id, output index or "applied") -> what our node computed, or None

SAMPLERS = frozenset({"KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced"})
CHECKPOINT_INPUTS = ("ckpt_name", "unet_name", "model_name")
TEXT_ENCODERS = frozenset({"CLIPTextEncode", "CLIPTextEncodeSDXL", "CLIPTextEncodeFlux", "CLIPTextEncodeSD3"})
OUR_LOADERS = frozenset({"LmLoraLoader", "LmLoraStacker"})
EMBEDDING = re.compile(r"embedding:([^\s,()\[\]{}<>]+)", re.IGNORECASE)
_STACK_NAME = re.compile(r"^lora_name_(\d+)$")

# ComfyUI's sampler names as A1111 (and CivitAI's parser) writes them
SAMPLER_NAMES = {
    "euler": "Euler", "euler_ancestral": "Euler a", "heun": "Heun", "heunpp2": "Heun++ 2", "dpm_2": "DPM2",
    "dpm_2_ancestral": "DPM2 a", "lms": "LMS", "dpm_fast": "DPM fast", "dpm_adaptive": "DPM adaptive",
    "dpmpp_2s_ancestral": "DPM++ 2S a", "dpmpp_sde": "DPM++ SDE", "dpmpp_sde_gpu": "DPM++ SDE",
    "dpmpp_2m": "DPM++ 2M", "dpmpp_2m_sde": "DPM++ 2M SDE", "dpmpp_2m_sde_gpu": "DPM++ 2M SDE",
    "dpmpp_3m_sde": "DPM++ 3M SDE", "dpmpp_3m_sde_gpu": "DPM++ 3M SDE", "ddim": "DDIM", "uni_pc": "UniPC",
    "uni_pc_bh2": "UniPC", "lcm": "LCM", "ddpm": "DDPM", "deis": "DEIS",
}
SCHEDULER_NAMES = {"karras": "Karras", "exponential": "Exponential", "sgm_uniform": "SGM Uniform",
                   "simple": "Simple", "normal": "Normal", "ddim_uniform": "DDIM", "beta": "Beta"}


@dataclass(slots=True, frozen=True, kw_only=True)
class ModelRef:
    kind: str  # checkpoint | lora | embedding
    name: str  # as the workflow names it (ComfyUI's relative path, or an embedding's name)
    strength: float | None = None


@dataclass(slots=True, kw_only=True)
class GenerationParams:
    positive: str = ""
    negative: str = ""
    steps: Any = None
    sampler: Any = None
    scheduler: Any = None
    cfg: Any = None
    seed: Any = None
    denoise: Any = None
    checkpoint: ModelRef | None = None
    loras: list[ModelRef] = field(default_factory=list)
    embeddings: list[ModelRef] = field(default_factory=list)


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int)) and isinstance(value[1], int)


class _Graph:
    def __init__(self, prompt: Prompt, executed: ExecutedOutput | None) -> None:
        self.prompt = prompt
        self.executed = executed or (lambda _id, _slot: None)

    def node(self, node_id: Any) -> Mapping[str, Any]:
        return self.prompt.get(str(node_id)) or {}

    def inputs(self, node_id: Any) -> Mapping[str, Any]:
        return self.node(node_id).get("inputs") or {}

    def cls(self, node_id: Any) -> str:
        return str(self.node(node_id).get("class_type") or "")

    def upstream(self, start: Any) -> list[str]:
        """Node ids feeding ``start``, nearest first (breadth first)."""
        seen: set[str] = set()
        order: list[str] = []
        queue = deque([str(start)])
        while queue:
            current = queue.popleft()
            for value in self.inputs(current).values():
                if _is_link(value) and str(value[0]) not in seen:
                    seen.add(str(value[0]))
                    order.append(str(value[0]))
                    queue.append(str(value[0]))
        return order

    def value(self, raw: Any, depth: int = 0) -> Any:
        """A literal, or what a link leads to (a primitive's value, a concatenation, our
        nodes' outputs as computed), or None when it cannot be known without running it."""
        if not _is_link(raw):
            return raw
        if depth > 20:
            return None
        node_id, slot = str(raw[0]), raw[1]
        executed = self.executed(node_id, slot)
        if executed is not None:
            return executed
        cls, inputs = self.cls(node_id), self.inputs(node_id)
        if cls == "StringConcatenate":
            parts = [self.value(inputs.get("string_a"), depth + 1), self.value(inputs.get("string_b"), depth + 1)]
            delimiter = self.value(inputs.get("delimiter", ""), depth + 1) or ""
            return str(delimiter).join(str(p) for p in parts if p is not None)
        for name in ("value", "text", "string", "seed", "noise_seed", "int", "float"):
            if name in inputs:
                return self.value(inputs[name], depth + 1)
        strings = [v for v in inputs.values() if isinstance(v, (str, int, float)) and not isinstance(v, bool)]
        return strings[0] if len(strings) == 1 else None

    def text_of_conditioning(self, raw: Any, depth: int = 0) -> str:
        if not _is_link(raw) or depth > 20:
            return ""
        node_id = str(raw[0])
        cls, inputs = self.cls(node_id), self.inputs(node_id)
        if cls in TEXT_ENCODERS:
            names = ("text", "text_g", "clip_l", "t5xxl", "text_l")
            texts = [str(self.value(inputs[n])) for n in names if n in inputs and self.value(inputs[n])]
            return texts[0] if texts else ""
        parts = [self.text_of_conditioning(v, depth + 1) for v in inputs.values() if _is_link(v)]
        return ", ".join(p for p in parts if p)


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _applied_by(graph: _Graph, node_id: str) -> list[ModelRef] | None:
    """What our loader or stacker applied when it ran (names as resolved), or None."""
    applied = graph.executed(node_id, "applied")
    if not isinstance(applied, (list, tuple)):
        return None
    return [ModelRef(kind="lora", name=str(n), strength=_number(s)) for n, s, *_ in applied]


def _listed_by(graph: _Graph, node_id: str) -> list[ModelRef]:
    """The active entries of our node's own ``loras`` input, as the prompt holds it."""
    value = graph.value(graph.inputs(node_id).get("loras"))
    try:
        entries = parse_lora_list(value) if isinstance(value, str) else []
    except LoraListError:
        return []
    return [ModelRef(kind="lora", name=e.name, strength=e.strength) for e in entries
            if e.active and (e.strength != 0 or e.clip_strength != 0)]


def _stack_refs(graph: _Graph, node_id: str, seen: set[str]) -> list[ModelRef]:
    """LoRAs of a ``LORA_STACK`` pack node (``lora_name_N`` with a switch and weights)."""
    if node_id in seen:
        return []
    seen.add(node_id)
    refs: list[ModelRef] = []
    inputs = graph.inputs(node_id)
    if graph.cls(node_id) in OUR_LOADERS:
        applied = _applied_by(graph, node_id)
        if applied is not None:
            return applied  # the whole stack it applied, upstream entries included
        refs += _listed_by(graph, node_id)
    else:
        numbered = sorted((int(m.group(1)), raw) for key, raw in inputs.items() if (m := _STACK_NAME.match(key)))
        for number, raw in numbered:
            n = str(number)
            name = graph.value(raw)
            switch = graph.value(inputs.get(f"switch_{n}", "On"))
            if not isinstance(name, str) or name in ("None", "") or str(switch).lower() in ("off", "false"):
                continue
            weight = next((graph.value(inputs[k]) for k in (f"model_weight_{n}", f"lora_wt_{n}", f"strength_{n}")
                           if k in inputs), 1.0)
            refs.append(ModelRef(kind="lora", name=name, strength=_number(weight)))
    upstream = inputs.get("lora_stack")
    if _is_link(upstream):
        refs = _stack_refs(graph, str(upstream[0]), seen) + refs
    return refs


def _model_chain(graph: _Graph, start: Any) -> tuple[ModelRef | None, list[ModelRef]]:
    """The checkpoint and the LoRAs applied along the ``model`` inputs, upstream from ``start``."""
    loras: list[ModelRef] = []
    seen: set[str] = set()
    current = start
    for _ in range(200):
        if not _is_link(current):
            break
        node_id = str(current[0])
        if node_id in seen:
            break
        seen.add(node_id)
        cls, inputs = graph.cls(node_id), graph.inputs(node_id)
        if cls in OUR_LOADERS:
            applied = _applied_by(graph, node_id)
            if applied is None:  # not run in this process: what its inputs name
                upstream = inputs.get("lora_stack")
                applied = (_stack_refs(graph, str(upstream[0]), set()) if _is_link(upstream) else [])
                applied += _listed_by(graph, node_id)
            loras = applied + loras
        elif isinstance(inputs.get("lora_name"), (str, list)):
            name = graph.value(inputs["lora_name"])
            strength = _number(graph.value(inputs.get("strength_model", 1.0)))
            if isinstance(name, str) and strength != 0:
                loras.insert(0, ModelRef(kind="lora", name=name, strength=strength))
        elif _is_link(inputs.get("lora_stack")):
            loras = _stack_refs(graph, str(inputs["lora_stack"][0]), set()) + loras
        for key in CHECKPOINT_INPUTS:
            name = graph.value(inputs.get(key)) if key in inputs else None
            if isinstance(name, str) and name:
                return ModelRef(kind="checkpoint", name=name), loras
        current = inputs.get("model")
    return None, loras


def collect_generation(prompt: Prompt, image_node: Any, *, executed: ExecutedOutput | None = None) -> GenerationParams:
    """What made the images that reach ``image_node``: the nearest sampler upstream and its models."""
    graph = _Graph(prompt, executed)
    params = GenerationParams()
    sampler = next((n for n in graph.upstream(image_node) if graph.cls(n) in SAMPLERS), None)
    if sampler is None:
        return params
    inputs = graph.inputs(sampler)
    params.seed = graph.value(inputs.get("seed", inputs.get("noise_seed")))
    params.steps = graph.value(inputs.get("steps"))
    params.cfg = graph.value(inputs.get("cfg"))
    params.sampler = graph.value(inputs.get("sampler_name"))
    params.scheduler = graph.value(inputs.get("scheduler"))
    params.denoise = graph.value(inputs.get("denoise"))
    params.positive = graph.text_of_conditioning(inputs.get("positive"))
    params.negative = graph.text_of_conditioning(inputs.get("negative"))
    params.checkpoint, params.loras = _model_chain(graph, inputs.get("model"))
    names: list[str] = []
    for text in (params.positive, params.negative):
        for name in EMBEDDING.findall(text):
            if name not in names:
                names.append(name)
    params.embeddings = [ModelRef(kind="embedding", name=n) for n in names]
    return params


def prompt_model_refs(prompt: Prompt) -> list[ModelRef]:
    """Every model an API-format prompt names, whatever feeds what (for usage history):
    checkpoints, LoRAs (core loaders, our list, ``LORA_STACK`` packs, ``<lora:...>`` text)
    and embeddings in prompt text."""
    refs: list[ModelRef] = []
    for node in prompt.values():
        inputs = node.get("inputs") or {}
        cls = str(node.get("class_type") or "")
        for key in CHECKPOINT_INPUTS:
            if isinstance(inputs.get(key), str):
                refs.append(ModelRef(kind="checkpoint", name=inputs[key]))
        for key, value in inputs.items():
            if not isinstance(value, str):
                continue
            if key == "lora_name" or _STACK_NAME.match(key):
                if value not in ("None", ""):
                    refs.append(ModelRef(kind="lora", name=value))
            elif key == "loras" and cls in OUR_LOADERS:
                try:
                    refs += [ModelRef(kind="lora", name=e.name) for e in parse_lora_list(value) if e.active]
                except LoraListError:
                    pass
            else:
                refs += [ModelRef(kind="embedding", name=n) for n in EMBEDDING.findall(value)]
                try:
                    refs += [ModelRef(kind="lora", name=e.name) for e in parse_lora_syntax(value)]
                except LoraListError:
                    pass
    unique: dict[tuple[str, str], ModelRef] = {}
    for ref in refs:
        unique.setdefault((ref.kind, ref.name), ref)
    return list(unique.values())


def _stem(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]


def _plain(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def parameters_text(params: GenerationParams, *, width: int, height: int, hash_of: HashOf) -> str:
    """The A1111 ``parameters`` text: prompt, ``Negative prompt:``, then ``Key: value, ...``."""
    fields: list[str] = []
    if params.steps is not None:
        fields.append(f"Steps: {_plain(params.steps)}")
    if params.sampler:
        fields.append(f"Sampler: {SAMPLER_NAMES.get(str(params.sampler), str(params.sampler))}")
    if params.scheduler:
        fields.append(f"Schedule type: {SCHEDULER_NAMES.get(str(params.scheduler), str(params.scheduler))}")
    if params.cfg is not None:
        fields.append(f"CFG scale: {_plain(params.cfg)}")
    if params.seed is not None:
        fields.append(f"Seed: {_plain(params.seed)}")
    fields.append(f"Size: {width}x{height}")
    if params.checkpoint is not None:
        model_hash = hash_of("checkpoint", params.checkpoint.name)
        if model_hash:
            fields.append(f"Model hash: {model_hash}")
        fields.append(f"Model: {_stem(params.checkpoint.name)}")
    if params.denoise not in (None, 1, 1.0):
        fields.append(f"Denoising strength: {_plain(params.denoise)}")
    for label, refs in (("Lora hashes", params.loras), ("TI hashes", params.embeddings)):
        pairs = []
        for ref in refs:
            digest = hash_of(ref.kind, ref.name)
            if digest and f"{_stem(ref.name)}: {digest}" not in pairs:
                pairs.append(f"{_stem(ref.name)}: {digest}")
        if pairs:
            fields.append(f'{label}: "{", ".join(pairs)}"')
    fields.append("Version: ComfyUI")
    lines = [params.positive]
    if params.negative:
        lines.append(f"Negative prompt: {params.negative}")
    lines.append(", ".join(fields))
    return "\n".join(lines)
