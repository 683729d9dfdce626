"""HuggingFace downloads (issue 14, part 4) through the real app and the local hub + CDN test
servers: size and SHA256 from the hub's headers before any byte, the CDN redirect, resume after
a dropped connection, verification (a wrong advertised SHA256 leaves nothing behind), gated
repositories with and without a token (env or the write-only setting), the token never sent to
the CDN, the sidecar (source URL, repo, revision, commit, licence, base model) and the folder."""
from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest
from safetensors.numpy import save

from .civitai_server import make_safetensors
from .download_helpers import start_download, wait_status
from .fixtures import services_of
from .huggingface_server import HuggingFaceTestServer, start_huggingface_server

REPO = "acme/ink-lora"
TOKEN = "hf_test_token_123"
BIG = 300_000


@pytest.fixture
async def hub(aiohttp_server, monkeypatch) -> HuggingFaceTestServer:
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    server = await start_huggingface_server(aiohttp_server)
    monkeypatch.setenv("HF_ENDPOINT", server.hub_origin)  # the only way to point the library at a hub
    return server


@pytest.fixture
async def app(make_client, library, hub):
    async def factory():
        client = await make_client(library)
        services_of(client).downloads.downloader.retry_delay = 0.01
        return client

    return factory


def lora_bytes(seed: int = 1, size: int = 4096) -> bytes:
    return make_safetensors(seed=seed, tensor_bytes=size, base_model="sdxl_base_v1-0")


def diffusion_bytes() -> bytes:
    tensors = {"double_blocks.0.img_attn.qkv.weight": np.arange(64, dtype=np.float32),
               "single_blocks.0.linear1.weight": np.arange(32, dtype=np.float32)}
    return save(tensors, metadata={"modelspec.architecture": "flux-1-dev"})


async def download(client, **payload):
    resp = await client.post("/api/lm/download-model", json=payload)
    return resp.status, await resp.json()


def sidecar_of(path: str) -> dict:
    return json.loads(open(os.path.splitext(path)[0] + ".metadata.json", encoding="utf-8").read())


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


async def test_a_resolve_url_downloads_verified_into_the_guessed_folder_with_its_sidecar(app, library, hub):
    content = lora_bytes()
    commit = hub.add_file(REPO, "loras/ink_style.safetensors", content, license="openrail++")
    client = await app()
    status, body = await download(client, hf_url=hub.url(REPO, "loras/ink_style.safetensors"))
    assert status == 200, body
    assert body["status"] == "completed" and body["source"] == "huggingface"
    assert body["model_type"] == "lora" and body["total_bytes"] == len(content)
    path = body["file_path"]
    assert path == str(library.loras / "ink_style.safetensors").replace(os.sep, "/")
    assert hashlib.sha256(open(path, "rb").read()).hexdigest() == hashlib.sha256(content).hexdigest()
    sidecar = sidecar_of(path)
    assert sidecar["sha256"] == hashlib.sha256(content).hexdigest() and sidecar["from_civitai"] is False
    assert sidecar["source_url"] == hub.url(REPO, "loras/ink_style.safetensors")
    assert sidecar["huggingface"] == {"repo": REPO, "path": "loras/ink_style.safetensors", "revision": "main",
                                      "commit": commit, "license": "openrail++",
                                      "url": hub.url(REPO, "loras/ink_style.safetensors")}
    assert sidecar["base_model"] == "SDXL 1.0"  # from the file's header
    # size and hash were known before any byte: a HEAD first, then the bytes from the CDN only
    hub_calls = [(r.method, r.path.split("?")[0]) for r in hub.seen("hub")]
    assert hub_calls[0] == ("HEAD", f"/{REPO}/resolve/main/loras/ink_style.safetensors")
    assert all(r.method == "GET" for r in hub.seen("cdn"))
    listed = (await (await client.get("/api/lm/loras/list")).json())["items"]
    assert [i["file_path"] for i in listed] == [path] and listed[0]["sha256"] == hashlib.sha256(content).hexdigest()


async def test_a_blob_url_at_a_tag_and_a_repo_id_with_path_both_work(app, library, hub):
    commit = hub.add_file(REPO, "a.safetensors", lora_bytes(2), revision="v1.0")
    hub.add_file("single", "b.safetensors", lora_bytes(3))
    client = await app()
    status, body = await download(client, hf_url=hub.url(REPO, "a.safetensors", revision="v1.0", kind="blob") + "?download=true")
    assert status == 200, body
    assert sidecar_of(body["file_path"])["huggingface"]["commit"] == commit
    # the bytes were asked for at the commit, so a resume can never mix two revisions
    assert any(f"/resolve/{commit}/a.safetensors" in r.path for r in hub.seen("hub", "GET"))
    status, body = await download(client, hf_repo="single", hf_path="b.safetensors", model_type="lora",
                                  relative_path="from-hf")
    assert status == 200, body
    assert body["file_path"] == str(library.loras / "from-hf" / "b.safetensors").replace(os.sep, "/")


async def test_the_type_folder_is_the_users_choice_with_a_default_from_the_header(app, library, hub):
    hub.add_file("bfl/flux", "flux1-dev.safetensors", diffusion_bytes())
    hub.add_file("bfl/flux", "second.safetensors", diffusion_bytes() + b"")
    client = await app()
    status, body = await download(client, hf_url=hub.url("bfl/flux", "flux1-dev.safetensors"))
    assert status == 200, body
    assert body["file_path"] == str(library.diffusion_models / "flux1-dev.safetensors").replace(os.sep, "/")
    assert body["model_type"] == "checkpoint"
    chosen = str(library.checkpoints).replace(os.sep, "/")
    hub.add_file("bfl/other", "third.safetensors", diffusion_bytes()[:-4] + b"    ")
    status, body = await download(client, hf_url=hub.url("bfl/other", "third.safetensors"), model_type="checkpoint",
                                  model_root=chosen)
    assert status == 200, body
    assert body["file_path"] == f"{chosen}/third.safetensors"


async def test_the_cdn_redirect_is_followed_and_the_token_goes_to_the_hub_only(app, library, hub, monkeypatch):
    hub.add_file(REPO, "ink.safetensors", lora_bytes())
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    client = await app()
    status, body = await download(client, hf_url=hub.url(REPO, "ink.safetensors"))
    assert status == 200, body
    assert hub.seen("cdn") and hub.seen("hub")
    assert all(r.headers.get("Authorization") == f"Bearer {TOKEN}" for r in hub.seen("hub"))
    assert all("Authorization" not in r.headers for r in hub.seen("cdn"))


async def test_a_gated_repo_needs_a_token_and_says_so(app, library, hub):
    hub.add_file("gated/model", "g.safetensors", lora_bytes(), gated=True)
    client = await app()
    status, body = await download(client, hf_url=hub.url("gated/model", "g.safetensors"))
    assert status == 401, body
    assert body["success"] is False and body["code"] == "authentication_required"
    assert "gated repository" in body["error"] and "HF_TOKEN" in body["error"]
    assert hub.seen("cdn") == [] and leftovers(library.base) == []


async def test_a_gated_repo_downloads_with_the_token_from_the_environment(app, library, hub, monkeypatch):
    hub.add_file("gated/model", "g.safetensors", lora_bytes(), gated=True)
    hub.allow_token("gated/model", TOKEN)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    client = await app()
    status, body = await download(client, hf_url=hub.url("gated/model", "g.safetensors"))
    assert status == 200, body


async def test_a_token_without_access_is_told_to_accept_the_conditions(app, library, hub, monkeypatch):
    hub.add_file("gated/model", "g.safetensors", lora_bytes(), gated=True)
    monkeypatch.setenv("HF_TOKEN", "hf_someone_else")
    client = await app()
    status, body = await download(client, hf_url=hub.url("gated/model", "g.safetensors"))
    assert status == 401, body
    assert "accept the conditions" in body["error"] and "hf_someone_else" not in json.dumps(body)


async def test_the_token_setting_is_write_only_and_used(app, library, hub):
    hub.add_file("gated/model", "g.safetensors", lora_bytes(), gated=True)
    hub.allow_token("gated/model", TOKEN)
    client = await app()
    resp = await client.post("/api/lm/settings", json={"huggingface_token": TOKEN})
    assert resp.status == 200, await resp.text()
    settings = await (await client.get("/api/lm/settings")).text()
    assert TOKEN not in settings and json.loads(settings)["settings"]["huggingface_token_set"] is True
    status, body = await download(client, hf_url=hub.url("gated/model", "g.safetensors"))
    assert status == 200, body
    assert all("Authorization" not in r.headers for r in hub.seen("cdn"))


async def test_the_hub_cannot_be_changed_over_http(app, library, hub):
    client = await app()
    resp = await client.post("/api/lm/settings", json={"huggingface_endpoint": "http://127.0.0.1:9"})
    assert resp.status == 400


async def test_a_dropped_connection_resumes_with_range_and_verifies(app, library, hub):
    content = lora_bytes(5, size=BIG)
    hub.add_file(REPO, "big.safetensors", content)
    hub.drop_after(100_000)
    client = await app()
    status, body = await download(client, hf_url=hub.url(REPO, "big.safetensors"))
    assert status == 200, body
    ranges = [r.headers.get("Range") for r in hub.seen("cdn") if r.headers.get("Range", "").startswith("bytes=")]
    assert any(r.startswith("bytes=") and not r.startswith(("bytes=0-", "bytes=8-")) for r in ranges), ranges
    assert hashlib.sha256(open(body["file_path"], "rb").read()).hexdigest() == hashlib.sha256(content).hexdigest()
    assert leftovers(library.loras) == ["big.metadata.json", "big.safetensors"]


async def test_a_file_that_does_not_match_the_advertised_sha256_is_refused_and_removed(app, library, hub):
    hub.add_file(REPO, "bad.safetensors", lora_bytes(), advertised_sha256="0" * 64)
    client = await app()
    started = await start_download(client, hf_url=hub.url(REPO, "bad.safetensors"))
    failed = await wait_status(client, started["download_id"], "failed")
    assert failed["code"] == "download_corrupt"
    assert "'bad.safetensors' does not match HuggingFace's SHA256" in failed["error"]
    assert leftovers(library.base) == []


async def test_a_file_already_in_the_library_is_a_409(app, library, hub):
    content = lora_bytes(7)
    hub.add_file(REPO, "dup.safetensors", content)
    client = await app()
    status, first = await download(client, hf_url=hub.url(REPO, "dup.safetensors"))
    assert status == 200, first
    status, body = await download(client, hf_url=hub.url(REPO, "dup.safetensors"), relative_path="again")
    assert status == 409 and body["file_path"] == first["file_path"]


@pytest.mark.parametrize("payload, status, message", [
    ({"hf_url": "https://example.com/acme/x/resolve/main/a.safetensors"}, 400, "'example.com' is not the HuggingFace hub"),
    ({"hf_url": "https://huggingface.co/datasets/acme/x/resolve/main/a.csv"}, 400, "'datasets/acme/x' is a HuggingFace dataset"),
    ({"hf_url": "https://huggingface.co/acme/x"}, 400, "'hf_url' must link to one file"),
    ({"hf_url": "https://huggingface.co/acme/x/resolve/main/../../etc/passwd"}, 400, "'../../etc/passwd' is not a file path"),
    ({"hf_repo": "acme/x"}, 400, "a HuggingFace file needs both 'hf_repo' and 'hf_path'"),
    ({"hf_repo": "acme/x", "hf_path": "a.safetensors", "model_version_id": 5}, 400, "name a CivitAI model"),
    ({"hf_repo": "../x", "hf_path": "a.safetensors"}, 400, "'../x' is not a HuggingFace repository id"),
])
async def test_bad_huggingface_requests_are_400s(app, library, hub, payload, status, message):
    client = await app()
    code, body = await download(client, **payload)
    assert code == status, body
    assert body["error"].startswith(message)
    assert hub.requests == []


async def test_a_missing_file_is_a_404_and_a_web_url_to_another_type_folder_is_a_400(app, library, hub):
    hub.add_file(REPO, "ink.safetensors", lora_bytes())
    client = await app()
    code, body = await download(client, hf_url=hub.url(REPO, "nope.safetensors"))
    assert code == 404 and body["code"] == "upstream_not_found"
    code, body = await download(client, hf_url=hub.url(REPO, "ink.safetensors"), model_type="lora",
                                model_root=str(library.checkpoints).replace(os.sep, "/"))
    assert code == 400 and "not a lora folder" in body["error"]


async def test_the_get_route_takes_a_huggingface_url_too(app, library, hub):
    hub.add_file(REPO, "ink.safetensors", lora_bytes())
    client = await app()
    resp = await client.get("/api/lm/download-model-get", params={"hf_url": hub.url(REPO, "ink.safetensors")})
    body = await resp.json()
    assert resp.status == 200, body
    assert body["file_path"].endswith("/ink.safetensors")


async def test_a_web_page_instead_of_a_safetensors_file_fails_at_once_with_a_clear_error(app, library, hub):
    hub.add_file(REPO, "page.safetensors", lora_bytes(), web_page=True)
    client = await app()
    code, body = await download(client, hf_url=hub.url(REPO, "page.safetensors"))
    assert code >= 400 and body["success"] is False, body
    assert body["error"].startswith("HuggingFace answered with a web page instead of the model file"), body
    assert len(hub.seen("cdn", "GET")) == 1  # the header read saw the page; nothing was retried
    assert leftovers(library.base) == []


async def test_a_web_page_instead_of_a_file_whose_header_is_not_read_fails_the_download_at_once(app, library, hub):
    hub.add_file(REPO, "page.ckpt", b"\x80\x02" + b"\x00" * 2048, web_page=True)
    client = await app()
    resp = await client.post("/api/lm/download-model", json={"wait": False, "hf_url": hub.url(REPO, "page.ckpt"),
                                                             "model_type": "checkpoint"})
    body = await resp.json()
    assert 400 <= resp.status < 600 and body["success"] is False, body
    assert body["error"].startswith("HuggingFace answered with a web page instead of the model file"), body
    failed = await wait_status(client, body["download_id"], "failed")
    assert failed["error"] == body["error"]
    assert len(hub.seen("cdn", "GET")) == 1  # not retried (it used to be 5 times)
    assert not [p for p in leftovers(library.base) if p.endswith((".ckpt", ".part"))]
