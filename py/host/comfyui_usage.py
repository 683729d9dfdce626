"""The prompt hook of the ComfyUI host: every prompt ComfyUI accepts into its queue has its
models counted in the usage history.

ComfyUI calls on-prompt handlers before it validates the prompt, so the hook gives the prompt
an id (ComfyUI keeps one a client sent) and counts it only once ComfyUI has queued, run or
finished that id: a prompt ComfyUI refuses is not a use. Runs on the server loop, never blocks it.
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any

from ..nodes.generation_params import prompt_model_refs
from ..nodes.library_access import NodeLibrary

_log = logging.getLogger(__name__)

QUEUE_WAIT = 10.0  # seconds a prompt has to reach ComfyUI's queue (validation is quick)
POLL = 0.1


def _known_to(queue: Any, prompt_id: str) -> bool:
    """Whether ComfyUI's queue holds, runs or has finished ``prompt_id``."""
    running, pending = queue.get_current_queue_volatile()
    if any(len(item) > 1 and item[1] == prompt_id for item in (*running, *pending)):
        return True
    return bool(queue.get_history(prompt_id=prompt_id))


async def _count_when_queued(queue: Any, prompt_id: str, record: Callable[[], None]) -> None:
    for _ in range(int(QUEUE_WAIT / POLL)):
        await asyncio.sleep(POLL)
        if _known_to(queue, prompt_id):
            record()
            return
    _log.debug("model library: prompt %s was not queued; its models are not counted", prompt_id)


def usage_hook(server: Any, library: NodeLibrary) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The on-prompt handler for ``PromptServer.add_on_prompt_handler``."""
    pending: set[asyncio.Task[None]] = set()

    def on_prompt(json_data: dict[str, Any]) -> dict[str, Any]:
        try:
            prompt = json_data.get("prompt") if isinstance(json_data, dict) else None
            if not isinstance(prompt, dict):
                return json_data
            refs = [(ref.kind, ref.name) for ref in prompt_model_refs(prompt)]
            if not refs:
                return json_data
            prompt_id = str(json_data.setdefault("prompt_id", str(uuid.uuid4())))
            task = asyncio.get_running_loop().create_task(
                _count_when_queued(server.prompt_queue, prompt_id, lambda: library.record_usage(refs))
            )
            pending.add(task)
            task.add_done_callback(pending.discard)
        except Exception:  # never in the way of a prompt
            _log.exception("model library: could not read the prompt's models for the usage history")
        return json_data

    return on_prompt
