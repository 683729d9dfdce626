"""Workflows as the library sees them: which models a ComfyUI workflow (UI or API format) or an
image's A1111 ``parameters`` text references, and whether the library has them.

Pure reading and look-ups over the library's index; it must not write files or know HTTP.
"""
