"""The job runtime: one job type for every long-running flow (downloads, CivitAI bulk
refresh, auto-organize) and one registry per kind that owns their tasks.

Owns statuses, single flight, queueing, pause/resume/cancel, waiting and the events the
socket layer subscribes to; it must not know what a job does (each kind brings a detail
record that counts its own progress and renders its snapshot). Imports only ``errors``.
"""
