"""Host adapters: the only place that knows whether ComfyUI is around."""
