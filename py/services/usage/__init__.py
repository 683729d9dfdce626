"""Usage history: how often and when each model was used in a queued ComfyUI prompt, keyed by
SHA256 (so moves and renames keep it), in the cache folder, never in the user's model folders."""
