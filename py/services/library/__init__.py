"""The library itself: what is on disk and how it is listed.

Owns the records of a model, the scanner, the in-memory index with its queries, the SQLite
cache, hashing, watching, the library of one type (``TypeLibrary``) and of all types
(``ModelLibrary``). Imports only ``shared``; it must not edit, fetch or download anything.
"""
