"""What nodes ask the library, asked the way ComfyUI's executor thread asks it (from another
thread, answered on the server loop), over a real library; and the usage history the prompt
hook fills."""
from __future__ import annotations

import asyncio
import hashlib
import os
import types

import pytest
from lm_plugin.py.host import comfyui_usage
from lm_plugin.py.nodes.library_access import NodeLibrary
from lm_plugin.py.nodes.lora_list import LoraEntry
from lm_plugin.py.services.usage.usage_history import UsageHistory

from .fixtures import services_of, wait_hashed

INK_SIDECAR = {"trigger_words": ["ink style"], "civitai": {"trainedWords": ["Ink Style", "bold lines, thick outline"]}}


@pytest.fixture
async def node_library(make_client, library):
    library.add_lora("ink", "style", sidecar=INK_SIDECAR)
    library.add_lora("ink", "other")  # a second file with the same stem
    library.add_lora("detail")
    library.add_checkpoint("base", "sd15")
    library.add_embedding("bad_hands")
    client = await make_client(library)
    services = services_of(client)
    nodes = NodeLibrary(services=services, loop=asyncio.get_running_loop())
    nodes.client = client  # for the tests that change the library
    return nodes


def ask(fn, *args):
    """Call node code from a worker thread, as ComfyUI's executor does."""
    return asyncio.to_thread(fn, *args)


async def test_names_resolve_as_comfyui_names_them_or_by_stem(node_library):
    found = await ask(node_library.resolve_loras, [
        LoraEntry(name="style/ink.safetensors"), LoraEntry(name="style\\ink"), LoraEntry(name="DETAIL"),
        LoraEntry(name="missing.safetensors"),
    ])
    assert [f.entry.name if f else None for f in found] == [
        "style/ink.safetensors", "style/ink.safetensors", "detail.safetensors", None]
    assert not any(f.warning for f in found if f)
    ambiguous = (await ask(node_library.resolve_loras, [LoraEntry(name="ink")]))[0]
    assert "matches 2 LoRAs" in ambiguous.warning


async def test_a_renamed_lora_is_found_again_by_the_sha256_the_widget_stored(node_library, library):
    client = node_library.client
    await wait_hashed(client)
    sha = services_of(client).library["lora"].index.get(str(library.loras / "detail.safetensors").replace("\\", "/"))
    sha = sha.sha256 if sha else (await (await client.get("/api/lm/loras/list")).json())
    os.rename(library.loras / "detail.safetensors", library.loras / "detail_v2.safetensors")
    await client.post("/api/lm/loras/scan")
    found = (await ask(node_library.resolve_loras, [LoraEntry(name="detail.safetensors", sha256=sha)]))[0]
    assert found.entry.name == "detail_v2.safetensors"
    assert "now 'detail_v2.safetensors' (found by its SHA256)" in found.warning
    assert (await ask(node_library.resolve_loras, [LoraEntry(name="detail.safetensors")])) == [None]


async def test_trigger_words_are_the_users_own_first_then_civitais(node_library):
    words = await ask(node_library.trigger_words, ["style/ink.safetensors", "detail.safetensors", "nope"])
    assert words == {"style/ink.safetensors": ["ink style", "bold lines, thick outline"], "detail.safetensors": []}


async def test_hashes_are_the_files_autov2_even_for_a_model_still_hashing(node_library, library):
    hashes = await ask(node_library.hashes, [("checkpoint", "sd15/base.safetensors"), ("embedding", "bad_hands"),
                                             ("lora", "nope")])
    expected = {
        ("checkpoint", "sd15/base.safetensors"): library.checkpoints / "sd15" / "base.safetensors",
        ("embedding", "bad_hands"): library.embeddings / "bad_hands.safetensors",
    }
    assert hashes == {key: hashlib.sha256(path.read_bytes()).hexdigest()[:10] for key, path in expected.items()}


async def test_node_code_on_the_loop_fails_clearly_instead_of_waiting_for_itself(node_library):
    with pytest.raises(RuntimeError, match="executor thread"):
        node_library.trigger_words(["detail"])


class FakeQueue:
    """ComfyUI's PromptQueue as the hook reads it: queued, running, history."""

    def __init__(self) -> None:
        self.queued: list[tuple] = []
        self.history: dict[str, dict] = {}

    def get_current_queue_volatile(self):
        return [], list(self.queued)

    def get_history(self, prompt_id=None):
        return {prompt_id: self.history[prompt_id]} if prompt_id in self.history else {}


async def test_the_prompt_hook_counts_what_queued_prompts_use_by_sha256(node_library, monkeypatch):
    monkeypatch.setattr(comfyui_usage, "QUEUE_WAIT", 1.0)
    monkeypatch.setattr(comfyui_usage, "POLL", 0.02)
    services = services_of(node_library.client)
    queue = FakeQueue()
    hook = comfyui_usage.usage_hook(types.SimpleNamespace(prompt_queue=queue), node_library)
    prompt = {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15/base.safetensors"}},
              "2": {"class_type": "LmLoraLoader", "inputs": {"loras": '[{"name": "detail.safetensors"}]'}},
              "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "x, embedding:bad_hands"}}}
    accepted = hook({"prompt": prompt})
    queue.queued.append((1, accepted["prompt_id"], prompt, {}, []))
    refused = hook({"prompt": prompt, "prompt_id": "refused-by-validation"})
    assert refused["prompt_id"] == "refused-by-validation"
    for _ in range(200):
        await asyncio.sleep(0.05)
        if len(services.usage.all()) == 3:
            break
    await asyncio.sleep(1.2)  # the refused one had its chance to be counted
    await wait_hashed(node_library.client)
    by_name = {e.file_name: services.usage.of(e.sha256) for t in services.library.values() for e in t.index.entries.values()}
    assert by_name["base"].count == by_name["detail"].count == by_name["bad_hands"].count == 1
    assert by_name["ink"] is None


async def test_usage_survives_a_restart_and_counts_a_model_once_per_prompt(tmp_path):
    history = UsageHistory(path=tmp_path / "cache" / "usage.sqlite3")
    await history.open()
    await history.record(["A" * 64, "a" * 64, "b" * 64], when=1000.0)
    await history.record(["a" * 64], when=2000.0)
    await history.close()
    if os.name != "nt":
        assert (tmp_path / "cache" / "usage.sqlite3").stat().st_mode & 0o077 == 0
    again = UsageHistory(path=tmp_path / "cache" / "usage.sqlite3")
    await again.open()
    assert again.of("a" * 64).count == 2 and again.of("a" * 64).first_used == 1000.0
    assert again.of("a" * 64).last_used == 2000.0 and again.of("b" * 64).count == 1
    await again.close()
