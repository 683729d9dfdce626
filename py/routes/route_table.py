"""Every URL of the library, in one place (Datasette's ``_routes``): per model type, per
type only, global (API, pages, sockets, static files) and the standalone server's own.

Declared the seed's way: ``COMMON_ROUTE_DEFINITIONS`` for every type (``{prefix}`` is
``loras``, ``checkpoints``, ``embeddings``, or one of the other types' prefixes, ``vaes``,
``controlnets``, ``upscalers`` ... bound once by ``model_type_routes``), ``TYPE_SPECIFIC_ROUTE_DEFINITIONS`` bound by
each controller's ``setup_specific_routes``. Other ``{...}`` parts are aiohttp path variables.
The README's route list is checked against this module (tests/test_route_docs.py).
"""
from __future__ import annotations

from ..services.shared.model_types import ModelType
from .model_route_registrar import RouteDefinition

R = RouteDefinition

COMMON_ROUTE_DEFINITIONS: tuple[RouteDefinition, ...] = (
    # page
    R("GET", "/{prefix}", "handle_models_page"),
    R("GET", "/lm/{prefix}", "handle_models_page"),
    # listing
    R("GET", "/api/lm/{prefix}/list", "get_models"),
    # read-only queries
    R("GET", "/api/lm/{prefix}/top-tags", "get_top_tags"),
    R("GET", "/api/lm/{prefix}/search-tags", "search_tags"),
    R("GET", "/api/lm/{prefix}/base-models", "get_base_models"),
    R("GET", "/api/lm/{prefix}/roots", "get_model_roots"),
    R("GET", "/api/lm/{prefix}/folders", "get_folders"),
    R("GET", "/api/lm/{prefix}/folder-tree", "get_folder_tree"),
    R("GET", "/api/lm/{prefix}/unified-folder-tree", "get_unified_folder_tree"),
    R("GET", "/api/lm/{prefix}/find-duplicates", "find_duplicate_models"),
    R("GET", "/api/lm/{prefix}/find-filename-conflicts", "find_filename_conflicts"),
    R("GET", "/api/lm/{prefix}/metadata", "get_model_metadata"),
    R("GET", "/api/lm/{prefix}/model-description", "get_model_description"),
    R("GET", "/api/lm/{prefix}/get-notes", "get_model_notes"),
    R("GET", "/api/lm/{prefix}/preview-url", "get_model_preview_url"),
    R("GET", "/api/lm/{prefix}/civitai-url", "get_model_civitai_url"),
    R("GET", "/api/lm/{prefix}/relative-paths", "get_relative_paths"),
    R("GET", "/api/lm/{prefix}/lookup", "lookup_models"),
    R("GET", "/api/lm/{prefix}/excluded", "get_excluded_models"),
    # library maintenance
    R("POST", "/api/lm/{prefix}/scan", "scan_models"),
    # mutations (issue 3): ModelManagementHandler, ModelMoveHandler
    R("POST", "/api/lm/{prefix}/delete", "delete_model"),
    R("POST", "/api/lm/{prefix}/bulk-delete", "bulk_delete_models"),
    R("POST", "/api/lm/{prefix}/exclude", "exclude_model"),
    R("POST", "/api/lm/{prefix}/unexclude", "unexclude_model"),
    R("POST", "/api/lm/{prefix}/save-metadata", "save_metadata"),
    R("POST", "/api/lm/{prefix}/add-tags", "add_tags"),
    R("POST", "/api/lm/{prefix}/remove-tags", "remove_tags"),
    R("POST", "/api/lm/{prefix}/replace-preview", "replace_preview"),
    R("POST", "/api/lm/{prefix}/set-preview-from-url", "set_preview_from_url"),
    R("POST", "/api/lm/{prefix}/rename", "rename_model"),
    R("POST", "/api/lm/{prefix}/verify-duplicates", "verify_duplicates"),
    R("POST", "/api/lm/{prefix}/move_model", "move_model"),
    R("POST", "/api/lm/{prefix}/move_models_bulk", "move_models_bulk"),
    # CivitAI (issue 4): ModelCivitaiHandler
    R("POST", "/api/lm/{prefix}/fetch-civitai", "fetch_civitai"),
    R("POST", "/api/lm/{prefix}/fetch-all-civitai", "fetch_all_civitai"),
    R("GET", "/api/lm/{prefix}/fetch-all-civitai-progress", "get_fetch_all_civitai_progress"),
    R("POST", "/api/lm/{prefix}/cancel-task", "cancel_task"),
    R("POST", "/api/lm/{prefix}/relink-civitai", "relink_civitai"),
    R("GET", "/api/lm/{prefix}/civitai/versions/{model_id}", "get_civitai_versions"),
    R("GET", "/api/lm/{prefix}/civitai/model/version/{version_id}", "get_civitai_model_by_version"),
    R("GET", "/api/lm/{prefix}/civitai/model/hash/{hash}", "get_civitai_model_by_hash"),
    # auto-organize (issue 5): ModelAutoOrganizeHandler; its GET moves files, so it is guarded
    R("GET", "/api/lm/{prefix}/auto-organize", "auto_organize", state_changing=True),
    R("POST", "/api/lm/{prefix}/auto-organize", "auto_organize"),
    R("GET", "/api/lm/{prefix}/auto-organize-progress", "get_auto_organize_progress"),
    R("POST", "/api/lm/{prefix}/auto-organize-clear", "clear_auto_organize"),
    # update checks (issue 14): ModelUpdateHandler; the check covers every type at once
    R("POST", "/api/lm/{prefix}/check-updates", "check_updates"),
    R("GET", "/api/lm/{prefix}/check-updates-progress", "get_update_check_progress"),
    R("POST", "/api/lm/{prefix}/cancel-update-check", "cancel_update_check"),
    R("GET", "/api/lm/{prefix}/updates", "get_updates"),
    R("POST", "/api/lm/{prefix}/ignore-update", "ignore_update"),
    R("POST", "/api/lm/{prefix}/download-update", "download_update"),
)



TYPE_SPECIFIC_ROUTE_DEFINITIONS: dict[ModelType, tuple[RouteDefinition, ...]] = {
    ModelType.LORA: (
        R("GET", "/api/lm/{prefix}/letter-counts", "get_letter_counts"),
        R("GET", "/api/lm/{prefix}/get-trigger-words", "get_trigger_words"),
        R("GET", "/api/lm/{prefix}/usage-tips-by-path", "get_usage_tips_by_path"),
    ),
    ModelType.CHECKPOINT: (
        R("GET", "/api/lm/{prefix}/info/{name:.+}", "get_model_info"),
        R("GET", "/api/lm/{prefix}/checkpoints_roots", "get_checkpoint_roots"),
        R("GET", "/api/lm/{prefix}/unet_roots", "get_unet_roots"),
    ),
    ModelType.EMBEDDING: (
        R("GET", "/api/lm/{prefix}/info/{name:.+}", "get_model_info"),
    ),
}

GLOBAL_ROUTE_DEFINITIONS: tuple[RouteDefinition, ...] = (
    # previews, settings, status, translations, the front-end files
    R("GET", "/api/lm/previews", "get_preview"),
    R("GET", "/api/lm/settings", "get_settings"),
    R("POST", "/api/lm/settings", "update_settings"),
    R("GET", "/api/lm/health-check", "health_check"),
    R("GET", "/api/lm/version-info", "version_info"),
    R("GET", "/api/lm/status", "library_status"),
    R("GET", "/api/lm/i18n", "get_i18n"),
    R("GET", "/api/lm/i18n/languages", "get_languages"),
    R("GET", "/lm/static/{path:.+}", "get_static"),
    # the ComfyUI editor: a tab asks for our events on ComfyUI's socket; the full page it
    # serves asks the editor to add a model (issue 11)
    R("POST", "/api/lm/events/listen", "listen_to_events"),
    R("POST", "/api/lm/graph/add", "add_to_graph"),
    # a workflow's models: present, moved or missing, with CivitAI candidates (issue 14)
    R("POST", "/api/lm/workflow/missing-models", "find_missing_models"),
    # the Disk view (issue 14): sizes per type and folder, largest, duplicates, never used
    R("GET", "/api/lm/disk", "get_disk_usage"),
    # the recoverable delete of any type
    R("POST", "/api/lm/undo-delete", "undo_delete"),
    # CivitAI availability, for browser extensions
    R("GET", "/api/lm/check-model-exists", "check_model_exists"),
    R("GET", "/api/lm/model-versions-status", "model_versions_status"),
    # downloads: the GETs that change state get the cross-origin rules; the browser
    # extension that sends downloads to the library may use them from its origin
    R("POST", "/api/lm/download-model", "download_model", extensions=True),
    R("GET", "/api/lm/download-model-get", "download_model_get", state_changing=True, extensions=True),
    R("GET", "/api/lm/download-progress/{download_id}", "get_download_progress"),
    R("GET", "/api/lm/cancel-download-get", "cancel_download", state_changing=True, extensions=True),
    R("GET", "/api/lm/pause-download", "pause_download", state_changing=True, extensions=True),
    R("GET", "/api/lm/resume-download", "resume_download", state_changing=True, extensions=True),
    R("GET", "/api/lm/downloads", "list_downloads"),
    R("GET", "/api/lm/downloads/history", "download_history"),
    # sockets stream the library's paths and progress to whoever opens one: they get the
    # cross-origin rules of a change (browsers make no CORS check for WebSockets)
    R("GET", "/ws/fetch-progress", "fetch_progress_socket", state_changing=True),
    R("GET", "/ws/init-progress", "init_progress_socket", state_changing=True),
    R("GET", "/ws/download-progress", "download_progress_socket", state_changing=True, extensions=True),
)

# the standalone server's own (inside ComfyUI, "/" is ComfyUI's)
STANDALONE_ROUTE_DEFINITIONS: tuple[RouteDefinition, ...] = (
    R("GET", "/", "redirect_home"),
)
