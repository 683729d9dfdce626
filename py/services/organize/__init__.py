"""Auto-organize: path templates, the plan (moves and skips with reasons) and the service
that executes it through the move service.

Imports ``shared``, ``library``, ``edits`` and ``jobs``; it must not move files itself.
"""
