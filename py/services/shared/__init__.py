"""Small pieces every domain uses: atomic files, file and model locks, the path guard,
settings, sidecar files, file moves, preview encoding, translations and the socket hub.

Owns mechanisms, not policy; it imports nothing else of the services (only ``errors``).
"""
