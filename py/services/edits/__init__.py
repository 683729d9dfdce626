"""Changes the user makes to models: delete (recoverable, with the trash), exclude,
rename, metadata and tags, previews, moves, hash verification.

Each service holds the model locks around its change and ends with ``refresh_paths``, so
the index equals the disk when it returns. Imports ``shared`` and ``library``; it must not
talk to CivitAI nor run long jobs.
"""
