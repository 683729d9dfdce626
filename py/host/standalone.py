"""The standalone host: roots from the command line or the settings file, our own server.

Owns CLI parsing and serving; ``python standalone.py --help`` lists the options.
Binds 127.0.0.1 unless told otherwise.
"""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from aiohttp import web

from ..app import build_app
from ..app_services import LibraryConfig
from ..services.library.model_scanner import library_roots
from ..services.shared.model_types import EXTRA_TYPES, ModelType, type_for_prefix
from ..services.shared.settings_manager import SettingsManager, default_settings_path

_log = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="standalone.py",
        description="Serve the model library without ComfyUI.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8188, help="port (default 8188)")
    parser.add_argument("--settings", type=Path, help="settings file (default: the user config dir)")
    parser.add_argument("--cache-dir", type=Path, help="where the index cache lives (default: the user cache dir)")
    parser.add_argument("--loras", action="append", default=[], metavar="DIR", help="a LoRA folder (repeatable)")
    parser.add_argument("--checkpoints", action="append", default=[], metavar="DIR", help="a checkpoint folder (repeatable)")
    parser.add_argument("--diffusion-models", action="append", default=[], metavar="DIR", help="a diffusion model (UNet) folder (repeatable)")
    parser.add_argument("--embeddings", action="append", default=[], metavar="DIR", help="an embedding folder (repeatable)")
    parser.add_argument(
        "--folder", action="append", default=[], metavar="TYPE=DIR",
        help="a folder of another type, e.g. vaes=DIR, controlnets=DIR, upscalers=DIR (repeatable)",
    )
    parser.add_argument("--demo", action="store_true", help="create a small generated demo library and serve it")
    parser.add_argument("--demo-dir", type=Path, default=None, help="where --demo creates its library")
    parser.add_argument("--no-watch", action="store_true", help="do not watch folders for changes")
    parser.add_argument(
        "--allowed-host", action="append", default=[], metavar="NAME",
        help="a host name the library answers to besides localhost and IP addresses, e.g. mypc.lan "
        "(repeatable; '*.example.lan' allows a domain; also LM_ALLOWED_HOSTS and \"allowed_hosts\" in the settings file)",
    )
    parser.add_argument(
        "--allowed-origin", action="append", default=[], metavar="ORIGIN",
        help="another web origin allowed to change the library, e.g. http://mypc.lan:3000 (repeatable)",
    )
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> LibraryConfig:
    demo_dir = (args.demo_dir or Path(__file__).resolve().parents[2] / "demo-library") if args.demo else None
    # the demo keeps its settings and cache beside its library, never in the user's own
    settings_path = args.settings or (demo_dir / ".state" / "settings.json" if demo_dir else default_settings_path())
    settings = SettingsManager(path=settings_path)
    loras = args.loras or settings.get("lora_roots")
    checkpoints = args.checkpoints or settings.get("checkpoint_roots")
    diffusion = args.diffusion_models or settings.get("diffusion_model_roots")
    embeddings = args.embeddings or settings.get("embedding_roots")
    cache_dir = args.cache_dir
    if demo_dir is not None:
        from .demo_library import create_demo_library

        folders = create_demo_library(demo_dir)
        loras = [str(folders["loras"])]
        checkpoints = [str(folders["checkpoints"])]
        diffusion = [str(folders["diffusion_models"])]
        embeddings = [str(folders["embeddings"])]
        cache_dir = cache_dir or demo_dir / ".state" / "cache"
    # the other types (VAEs, ControlNets, ...): "vae_roots" etc. in the settings file, or --folder TYPE=DIR
    extra: dict[ModelType, list[tuple[str, str]]] = {t: [] for t in EXTRA_TYPES}
    for item in args.folder:
        name, _, path = item.partition("=")
        model_type = type_for_prefix(name)
        if model_type is None or model_type.is_core or not path:
            raise SystemExit(f"--folder {item!r}: expected TYPE=DIR with TYPE one of "
                             + ", ".join(t.prefix for t in EXTRA_TYPES))
        extra[model_type].append((path, ""))
    for model_type in EXTRA_TYPES:
        if not extra[model_type]:
            extra[model_type] = [(p, "") for p in settings.get(model_type.spec.settings_key)]
    roots = library_roots(
        loras=loras, checkpoints=checkpoints, diffusion_models=diffusion, embeddings=embeddings, extra=extra
    )
    for model_type, items in roots.items():
        for root in items:
            if not os.path.isdir(root.path):
                _log.warning("%s folder %s does not exist (yet)", model_type.value, root.path)
    return LibraryConfig(
        roots=roots,
        settings_path=settings_path,
        cache_dir=cache_dir,
        watch=not args.no_watch,
        host_name="standalone",
        allowed_hosts=tuple(args.allowed_host),
        allowed_origins=tuple(args.allowed_origin),
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = config_from_args(args)
    if not any(config.roots.values()):
        _log.warning("no model folders given: pass --loras DIR (etc.), set them in %s, or try --demo", config.settings_path)
    app = build_app(config)
    _log.info("model library on http://%s:%d/loras", args.host, args.port)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)
