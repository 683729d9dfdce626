"""The services: everything the library does, in one package per domain.

``shared`` (small pieces every domain uses) ← ``library`` (scan, index, cache, hashing,
watching, queries) ← ``edits`` (lifecycle, metadata, tags, previews, moves, trash) ·
``civitai`` · ``jobs`` ← ``downloads`` · ``organize`` ← ``use_cases`` (long-running flows).
An arrow points from what is imported to the importer; nothing here imports ``routes`` or
``host`` (tests/test_layers.py keeps it so).
"""
