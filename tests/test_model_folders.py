"""Every ComfyUI model folder (issue 14, part 3): the type table, roots from folder_paths
(an ``extra_model_paths.yaml`` key included) and from the standalone settings, and each new
type through list, search, preview, edit, rename, move, delete and undo on a real server,
under the same guards as the main three.
"""
from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
from aiohttp import web
from lm_plugin.py.app import build_app
from lm_plugin.py.app_services import LibraryConfig
from lm_plugin.py.host.comfyui import comfyui_roots
from lm_plugin.py.host.standalone import config_from_args, parse_args
from lm_plugin.py.services.library.model_scanner import library_roots
from lm_plugin.py.services.shared.model_types import EXTRA_TYPES, TYPE_SPECS, ModelType, type_for_civitai
from lm_plugin.py.services.shared.settings_manager import SettingsManager

from .civitai_fixtures import civitai  # noqa: F401  (fixture)
from .fixtures import LibraryBuilder, services_of, wait_ready
from .mutation_helpers import CROSS_SITE_HEADERS, disk_snapshot


class FolderLibrary(LibraryBuilder):
    """The main three roots plus a folder per extra type (created on demand)."""

    def __init__(self, base: Path) -> None:
        super().__init__(base)
        self.extra: dict[ModelType, list[tuple[str, str]]] = {}

    def folder(self, model_type: ModelType, name: str | None = None, sub_type: str = "") -> Path:
        path = self.base / (name or model_type.value)
        path.mkdir(parents=True, exist_ok=True)
        pairs = self.extra.setdefault(model_type, [])
        if (str(path), sub_type) not in pairs:
            pairs.append((str(path), sub_type))
        return path

    def add(self, model_type: ModelType, name: str, folder: str = "", *, preview: str | None = None,
            root: Path | None = None, values: int = 8) -> Path:
        return self._write_model(root or self.folder(model_type), name, folder, metadata={}, sidecar=None,
                                 preview=preview, values=values)

    def config(self, *, state_dir: Path, watch: bool = False, **kwargs) -> LibraryConfig:
        return LibraryConfig(
            roots=library_roots(
                loras=[str(self.loras)], checkpoints=[str(self.checkpoints)],
                diffusion_models=[str(self.diffusion_models)], embeddings=[str(self.embeddings)], extra=self.extra,
            ),
            settings_path=state_dir / "settings.json", cache_dir=state_dir / "cache", watch=watch, **kwargs,
        )


@pytest.fixture
def folders(tmp_path) -> FolderLibrary:
    return FolderLibrary(tmp_path / "library")


async def start(aiohttp_client, lib: FolderLibrary, state_dir: Path):
    app = build_app(lib.config(state_dir=state_dir))
    client = await aiohttp_client(app)
    await wait_ready(app)
    return client


async def get(client, path: str, status: int = 200, **params) -> dict:
    resp = await client.get(path, params={k: str(v) for k, v in params.items()})
    text = await resp.text()
    assert resp.status == status, text
    return json.loads(text)


async def post(client, path: str, body, status: int = 200, headers=None) -> dict:
    resp = await client.post(path, json=body, headers=headers)
    text = await resp.text()
    assert resp.status == status, text
    return json.loads(text)


async def listed(client, prefix: str, **params) -> list[str]:
    body = await get(client, f"/api/lm/{prefix}/list", page_size=100, **params)
    return sorted(i["file_path"] for i in body["items"])


# --- the type table ----------------------------------------------------------------------

def test_the_type_table_names_every_comfyui_model_folder():
    keys = {key for spec in TYPE_SPECS.values() for key in spec.folder_keys}
    for key in ("loras", "checkpoints", "embeddings", "vae", "controlnet", "t2i_adapter", "upscale_models",
                "text_encoders", "clip", "clip_vision", "style_models", "hypernetworks", "gligen", "photomaker",
                "model_patches", "audio_encoders"):
        assert key in keys
    prefixes = [t.prefix for t in ModelType]
    assert len(set(prefixes)) == len(prefixes)
    assert [t.prefix for t in ModelType if t.is_core] == ["loras", "checkpoints", "embeddings"]
    assert {type_for_civitai(c) for c in ("VAE", "Controlnet", "Upscaler", "Hypernetwork", "MotionModule")} == {
        ModelType.VAE, ModelType.CONTROLNET, ModelType.UPSCALER, ModelType.HYPERNETWORK, ModelType.OTHER}
    assert type_for_civitai("Poses") is None


def test_comfyui_roots_cover_every_folder_paths_key(monkeypatch, tmp_path):
    base = tmp_path / "models"
    paths = {
        "loras": [base / "loras"], "checkpoints": [base / "checkpoints"], "vae": [base / "vae"],
        "controlnet": [base / "controlnet", base / "t2i_adapter"], "upscale_models": [base / "upscale_models"],
        "text_encoders": [base / "text_encoders", base / "clip"], "clip_vision": [base / "clip_vision"],
        "configs": [base / "configs"], "custom_nodes": [tmp_path / "custom_nodes"],
        # added by extra_model_paths.yaml / a custom node under a key no type names
        "animatediff_models": [tmp_path / "elsewhere" / "animatediff"],
    }
    for folder in [p for v in paths.values() for p in v if p.name != "t2i_adapter"]:
        folder.mkdir(parents=True, exist_ok=True)  # t2i_adapter is absent: not a root
    folder_paths = types.ModuleType("folder_paths")
    folder_paths.folder_names_and_paths = {k: ([str(p) for p in v], set()) for k, v in paths.items()}
    folder_paths.get_folder_paths = lambda name: list(folder_paths.folder_names_and_paths[name][0])
    monkeypatch.setitem(sys.modules, "folder_paths", folder_paths)
    settings = SettingsManager(path=tmp_path / "settings.json")
    roots = comfyui_roots(settings)
    as_paths = {t: [(r.path, r.sub_type) for r in rs] for t, rs in roots.items()}
    assert as_paths[ModelType.VAE] == [(str(base / "vae"), "")]
    assert as_paths[ModelType.CONTROLNET] == [(str(base / "controlnet"), "")]
    assert as_paths[ModelType.TEXT_ENCODER] == [(str(base / "text_encoders"), ""), (str(base / "clip"), "")]
    assert as_paths[ModelType.OTHER] == [(str(tmp_path / "elsewhere" / "animatediff"), "animatediff_models")]
    assert as_paths[ModelType.GLIGEN] == [] and as_paths[ModelType.STYLE_MODEL] == []
    every = [p for rs in as_paths.values() for p, _ in rs]
    assert str(base / "configs") not in every and str(tmp_path / "custom_nodes") not in every


def test_standalone_takes_folders_from_the_command_line_and_the_settings(tmp_path):
    settings_path = tmp_path / "settings.json"
    settings_path.write_text(json.dumps({"upscaler_roots": [str(tmp_path / "up")]}))
    config = config_from_args(parse_args([
        "--settings", str(settings_path), "--cache-dir", str(tmp_path / "c"),
        "--folder", f"vaes={tmp_path / 'vae'}", "--folder", f"controlnet={tmp_path / 'cn'}",
    ]))
    assert [r.path for r in config.roots[ModelType.VAE]] == [str(tmp_path / "vae")]
    assert [r.path for r in config.roots[ModelType.CONTROLNET]] == [str(tmp_path / "cn")]
    assert [r.path for r in config.roots[ModelType.UPSCALER]] == [str(tmp_path / "up")]
    assert config.roots[ModelType.GLIGEN] == []
    with pytest.raises(SystemExit):
        config_from_args(parse_args(["--settings", str(settings_path), "--folder", "loras=/x"]))
    with pytest.raises(SystemExit):
        config_from_args(parse_args(["--settings", str(settings_path), "--folder", "nonsense=/x"]))


# --- every new type through the routes ------------------------------------------------------

# every type beyond the main three, each in a folder of its own; `other` from an extra folder_paths key
CASES = [(t, "animatediff_models" if t is ModelType.OTHER else "") for t in EXTRA_TYPES]


@pytest.mark.parametrize(("model_type", "sub_type"), CASES, ids=[t.prefix for t, _ in CASES])
async def test_a_new_type_lists_edits_renames_moves_deletes_and_undoes(aiohttp_client, folders, tmp_path,
                                                                       model_type, sub_type):
    prefix = model_type.prefix
    root = folders.folder(model_type, sub_type=sub_type)
    first = folders.add(model_type, "alpha_model", "sub", preview="png", root=root)
    second = folders.add(model_type, "beta_model", root=root)
    lora = folders.add_lora("not_this_type")
    client = await start(aiohttp_client, folders, tmp_path / "state")

    # listed, searched, previewed, under its own prefix only
    assert await listed(client, prefix) == sorted([first.as_posix(), second.as_posix()])
    assert await listed(client, prefix, search="alpha") == [first.as_posix()]
    body = await get(client, f"/api/lm/{prefix}/list", page_size=100, search="alpha")
    item = body["items"][0]
    assert item["preview_url"] and item["sub_type"] == sub_type
    preview = await client.get(item["preview_url"])
    assert preview.status == 200 and (await preview.read())[:4] == b"\x89PNG"
    assert lora.as_posix() not in await listed(client, prefix)
    roots = await get(client, f"/api/lm/{prefix}/roots")
    assert roots["roots"] == [root.as_posix()]

    # edited
    await post(client, f"/api/lm/{prefix}/save-metadata", {"file_path": first.as_posix(), "notes": "kept"})
    sidecar = json.loads((root / "sub" / "alpha_model.metadata.json").read_text())
    assert sidecar["notes"] == "kept"
    await post(client, f"/api/lm/{prefix}/add-tags", {"file_path": first.as_posix(), "tags": ["mine"]})

    # renamed (with its sidecar and preview)
    renamed = await post(client, f"/api/lm/{prefix}/rename",
                         {"file_path": first.as_posix(), "new_file_name": "alpha_renamed"})
    assert renamed["success"] is True
    moved_path = (root / "sub" / "alpha_renamed.safetensors")
    assert moved_path.exists() and (root / "sub" / "alpha_renamed.png").exists()

    # moved into another folder of the type
    (root / "elsewhere").mkdir()
    await post(client, f"/api/lm/{prefix}/move_model",
               {"file_path": moved_path.as_posix(), "target_path": (root / "elsewhere").as_posix()})
    final = root / "elsewhere" / "alpha_renamed.safetensors"
    assert final.exists() and (root / "elsewhere" / "alpha_renamed.metadata.json").exists()
    assert await listed(client, prefix) == sorted([final.as_posix(), second.as_posix()])
    notes = await get(client, f"/api/lm/{prefix}/get-notes", file_path=final.as_posix())
    assert notes["notes"] == "kept"

    # deleted, then undone
    before = disk_snapshot(root)
    deleted = await post(client, f"/api/lm/{prefix}/delete", {"file_path": final.as_posix()})
    assert not final.exists()
    assert await listed(client, prefix) == [second.as_posix()]
    undo = await post(client, "/api/lm/undo-delete", {"batch_id": deleted["batch_id"]})
    assert undo["succeeded"] == 1
    assert disk_snapshot(root) == before
    assert final.as_posix() in await listed(client, prefix)


async def test_new_types_have_the_same_guards(aiohttp_client, folders, tmp_path):
    vae = folders.add(ModelType.VAE, "guarded_vae")
    lora = folders.add_lora("a_lora")
    client = await start(aiohttp_client, folders, tmp_path / "state")
    # a LoRA is outside the VAE roots; a path outside the library is refused; bad input is a 400
    outside = await post(client, "/api/lm/vaes/delete", {"file_path": lora.as_posix()}, status=403)
    assert outside["success"] is False and outside["error"]
    await post(client, "/api/lm/vaes/delete", {"file_path": str(tmp_path / "x.safetensors")}, status=403)
    await post(client, "/api/lm/vaes/delete", {"file_path": 3}, status=400)
    for headers in CROSS_SITE_HEADERS[:1]:
        resp = await client.post("/api/lm/vaes/delete", json={"file_path": vae.as_posix()}, headers=headers)
        assert resp.status == 403
    assert vae.exists() and lora.exists()
    # a prefix the table does not know is no route at all
    assert (await client.get("/api/lm/nonsense/list")).status == 404


async def test_types_without_folders_cost_nothing_and_are_not_offered(aiohttp_client, folders, tmp_path):
    folders.add(ModelType.VAE, "only_vae")
    folders.folder(ModelType.UPSCALER)  # a folder, but empty: ComfyUI's default folders look like this
    client = await start(aiohttp_client, folders, tmp_path / "state")
    services = services_of(client)
    gligen = services.library[ModelType.GLIGEN]
    assert gligen.is_ready and not gligen.roots and len(gligen.index) == 0 and gligen.last_scan == {}
    assert (await get(client, "/api/lm/gligen/list"))["items"] == []
    health = await get(client, "/api/lm/health-check")
    assert set(health["ready"]) == {"lora", "checkpoint", "embedding", "vae", "upscale_models"}
    status = await get(client, "/api/lm/status")
    assert status["types"]["vae"]["prefix"] == "vaes" and status["types"]["vae"]["total"] == 1

    page = await client.get("/lm/vaes")
    html = await page.text()
    assert page.status == 200 and 'data-type="vaes"' in html and 'aria-current="page"' in html
    assert 'data-type="loras"' in html
    assert 'data-type="upscalers"' not in html  # empty
    assert 'data-type="gligen"' not in html  # no folder
    # the plain prefix page exists too (standalone)
    assert (await client.get("/controlnets")).status == 200


async def test_every_extra_type_is_registered_once_not_per_prefix(folders, tmp_path):
    from lm_plugin.py.app import register_routes
    from lm_plugin.py.app_services import build_services

    services = build_services(folders.config(state_dir=tmp_path / "s"))
    registrar, controllers = register_routes(web.RouteTableDef(), services, standalone=True)
    generic = [(m, p) for m, p in registrar.registered if p.startswith("/api/lm/{prefix:")]
    assert len(generic) == len(set(generic)) and generic
    assert {c.model_type for c in controllers} == set(ModelType)
    assert all(t.prefix in generic[0][1] for t in EXTRA_TYPES)


# --- CivitAI by hash --------------------------------------------------------------------------

async def test_a_vae_is_identified_on_civitai_by_hash(aiohttp_client, folders, tmp_path, monkeypatch, civitai):  # noqa: F811
    from .civitai_app import fast_limiter, place, point_app_at, read_sidecar

    point_app_at(monkeypatch, civitai)
    model = civitai.add_model(name="SDXL VAE fix", type="VAE", tags=["vae"], creator="madebyollin")
    version = civitai.add_version(model, base_model="SDXL 1.0", trained_words=[])
    path = place(folders, version, "sdxl_vae_fix", root=folders.folder(ModelType.VAE))
    client = await start(aiohttp_client, folders, tmp_path / "state")
    fast_limiter(client)

    body = await post(client, "/api/lm/vaes/fetch-civitai", {"file_path": path.as_posix()})
    item = body["metadata"]
    assert item["from_civitai"] is True and item["model_name"] == "SDXL VAE fix"
    assert item["civitai"]["id"] == version.id and item["base_model"] == "SDXL 1.0"
    assert read_sidecar(path)["sha256"] == version.sha256
    listed = (await get(client, "/api/lm/vaes/list"))["items"]
    assert next(i for i in listed if i["file_path"] == path.as_posix())["civitai"]["id"] == version.id


async def test_a_workflows_vae_and_controlnet_are_present_or_missing_once_they_have_folders(aiohttp_client, folders,
                                                                                           tmp_path):
    vae = folders.add(ModelType.VAE, "sdxl_vae", "sdxl")
    folders.folder(ModelType.CONTROLNET)
    client = await start(aiohttp_client, folders, tmp_path / "state")
    workflow = {"nodes": [
        {"id": 1, "type": "VAELoader", "widgets_values": ["sdxl/sdxl_vae.safetensors"]},
        {"id": 2, "type": "VAELoader", "widgets_values": ["old/sdxl_vae.safetensors"]},
        {"id": 3, "type": "ControlNetLoader", "widgets_values": ["canny.safetensors"]},
        {"id": 4, "type": "GLIGENLoader", "widgets_values": ["gligen.safetensors"]},
    ]}
    body = await post(client, "/api/lm/workflow/missing-models", {"workflow": workflow, "lookup_civitai": False})
    refs = {r["name"]: r for r in body["references"]}
    present = refs["sdxl/sdxl_vae.safetensors"]
    assert (present["status"], present["model_type"], present["file_path"]) == ("present", "vae", vae.as_posix())
    moved = refs["old/sdxl_vae.safetensors"]
    assert moved["status"] == "moved" and moved["matches"][0]["name"] == "sdxl/sdxl_vae.safetensors"
    assert (refs["canny.safetensors"]["status"], refs["canny.safetensors"]["model_type"]) == ("missing", "controlnet")
    assert refs["gligen.safetensors"]["status"] == "not_managed"  # no GLIGEN folder
