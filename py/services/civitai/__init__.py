"""CivitAI: the one HTTP client (rate limiter, not-found cache), the metadata merge policy
and the sync service that writes CivitAI's answers into sidecars.

Imports ``shared`` and ``library``; it must not plan downloads nor organize files.
"""
