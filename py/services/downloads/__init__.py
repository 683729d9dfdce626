"""Downloads of model files: plans, the resumable verified downloader and the download
service that queues jobs on the job runtime and keeps their history.

Imports ``shared``, ``library``, ``civitai`` and ``jobs``; it must not decide where a file
goes (the download use case plans that).
"""
