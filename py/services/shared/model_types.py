"""The kinds of model the library manages: one table (``TYPE_SPECS``) names, for each,
its URL prefix, ComfyUI ``folder_paths`` keys, the standalone settings key of its roots,
file extensions and CivitAI types (the locale label is ``types.<value>``).

Owns the vocabulary only; what a model of a kind is on disk is the library's business.
LoRAs, checkpoints (with diffusion models as a sub-type) and embeddings have routes of
their own; every other type is served by one generic controller. ``OTHER`` gathers the
folders of ``folder_paths`` keys no row names (``extra_model_paths.yaml``, custom nodes):
the key is the root's sub-type.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

# ComfyUI's folder_paths.supported_pt_extensions
PT_EXTENSIONS = frozenset({".safetensors", ".sft", ".ckpt", ".pt", ".pt2", ".pth", ".bin", ".pkl"})


class ModelType(str, Enum):
    LORA = "lora"
    CHECKPOINT = "checkpoint"
    EMBEDDING = "embedding"
    VAE = "vae"
    CONTROLNET = "controlnet"
    UPSCALER = "upscale_models"
    TEXT_ENCODER = "text_encoders"
    CLIP_VISION = "clip_vision"
    STYLE_MODEL = "style_models"
    HYPERNETWORK = "hypernetworks"
    GLIGEN = "gligen"
    PHOTOMAKER = "photomaker"
    MODEL_PATCH = "model_patches"
    AUDIO_ENCODER = "audio_encoders"
    OTHER = "other"

    @property
    def spec(self) -> "TypeSpec":
        return TYPE_SPECS[self]

    @property
    def prefix(self) -> str:
        """The URL prefix of this type (`/loras`, `/api/lm/loras/...`)."""
        return TYPE_SPECS[self].prefix

    @property
    def is_core(self) -> bool:
        """LoRAs, checkpoints, embeddings: their own controllers, always shown, scanned first."""
        return TYPE_SPECS[self].core

    @property
    def label_key(self) -> str:
        """Its name in locales/*/library.json (``types.vae`` ...)."""
        return "types." + self.value


@dataclass(frozen=True, slots=True)
class TypeSpec:
    """One row of the type table."""

    prefix: str
    folder_keys: tuple[str, ...]  # folder_paths keys (legacy names after the current one)
    settings_key: str  # the standalone settings list of extra roots
    extensions: frozenset[str]
    civitai_types: frozenset[str]  # CivitAI ``model.type`` values, lower case
    core: bool = False


def _spec(prefix: str, keys: tuple[str, ...], settings_key: str, civitai: tuple[str, ...] = (),
          *, core: bool = False, extensions: frozenset[str] = PT_EXTENSIONS) -> TypeSpec:
    return TypeSpec(prefix, keys, settings_key, extensions, frozenset(c.lower() for c in civitai), core)


TYPE_SPECS: dict[ModelType, TypeSpec] = {
    ModelType.LORA: _spec("loras", ("loras",), "lora_roots", ("LORA", "LoCon", "DoRA", "LyCORIS"), core=True,
                          extensions=frozenset({".safetensors"})),
    ModelType.CHECKPOINT: _spec("checkpoints", ("checkpoints",), "checkpoint_roots", ("Checkpoint",), core=True),
    ModelType.EMBEDDING: _spec("embeddings", ("embeddings",), "embedding_roots", ("TextualInversion",), core=True),
    ModelType.VAE: _spec("vaes", ("vae",), "vae_roots", ("VAE",)),
    ModelType.CONTROLNET: _spec("controlnets", ("controlnet", "t2i_adapter"), "controlnet_roots", ("Controlnet",)),
    ModelType.UPSCALER: _spec("upscalers", ("upscale_models",), "upscaler_roots", ("Upscaler",)),
    ModelType.TEXT_ENCODER: _spec("text-encoders", ("text_encoders", "clip"), "text_encoder_roots",
                                  extensions=PT_EXTENSIONS | {".gguf"}),
    ModelType.CLIP_VISION: _spec("clip-vision", ("clip_vision",), "clip_vision_roots"),
    ModelType.STYLE_MODEL: _spec("style-models", ("style_models",), "style_model_roots"),
    ModelType.HYPERNETWORK: _spec("hypernetworks", ("hypernetworks",), "hypernetwork_roots", ("Hypernetwork",)),
    ModelType.GLIGEN: _spec("gligen", ("gligen",), "gligen_roots"),
    ModelType.PHOTOMAKER: _spec("photomaker", ("photomaker",), "photomaker_roots"),
    ModelType.MODEL_PATCH: _spec("model-patches", ("model_patches",), "model_patch_roots"),
    ModelType.AUDIO_ENCODER: _spec("audio-encoders", ("audio_encoders",), "audio_encoder_roots"),
    # extra_model_paths.yaml keys and custom nodes' folders (AnimateDiff's motion modules ...)
    ModelType.OTHER: _spec("other-models", (), "other_model_roots", ("MotionModule",),
                           extensions=PT_EXTENSIONS | {".gguf"}),
}

CORE_TYPES: tuple[ModelType, ...] = tuple(t for t in ModelType if TYPE_SPECS[t].core)
EXTRA_TYPES: tuple[ModelType, ...] = tuple(t for t in ModelType if not TYPE_SPECS[t].core)

# folder_paths keys that hold no model files of their own (or are covered by a row above)
NON_MODEL_FOLDER_KEYS = frozenset({
    "configs", "custom_nodes", "diffusers", "classifiers", "diffusion_models", "unet", "clip", "t2i_adapter",
})


def type_for_prefix(text: str) -> ModelType | None:
    """The type named by its value or URL prefix (``vae``, ``vaes``), or None."""
    value = str(text or "").strip().lower()
    return next((t for t in ModelType if value in (t.value, TYPE_SPECS[t].prefix)), None)


def type_for_civitai(civitai_type: str) -> ModelType | None:
    """Our type for a CivitAI ``model.type`` (``VAE`` → VAE, ``Controlnet`` → CONTROLNET ...)."""
    value = str(civitai_type or "").strip().lower()
    return next((t for t in ModelType if value in TYPE_SPECS[t].civitai_types), None)
