#!/usr/bin/env bash
# Provision the real ComfyUI the comfyui-marked tests run against, in a cache outside the
# clone (created once, reused while complete), and print the environment for them:
#
#   eval "$(bash tests/comfyui/provision_comfyui.sh)"   # COMFYUI_DIR, COMFYUI_PYTHON, LM_FRONTEND_158
#
# ComfyUI 0.3.64 comes from the shared source tarball (no network for it); torch and
# torchvision from this machine's local wheels; the newest frontend (1.58.x) from PyPI.
# Progress goes to stderr; stdout carries only the export lines.
set -euo pipefail
cd "$(dirname "$0")/../.."

CACHE="${LM_CI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lm-ci}"
HOME_DIR="$CACHE/comfyui-0.3.64"
PYTHON="${PYTHON:-python3}"
FRONTEND_SPEC="comfyui-frontend-package>=1.58,<1.59"

find_tarball() {
  for candidate in "${LM_COMFYUI_TARBALL:-}" "../shared/comfyui/ComfyUI-0.3.64.tar.gz" \
                   "/work/shared/comfyui/ComfyUI-0.3.64.tar.gz"; do
    if [ -n "$candidate" ] && [ -f "$candidate" ]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

if [ ! -f "$HOME_DIR/.complete" ]; then
  tarball="$(find_tarball)" || { echo "ComfyUI-0.3.64.tar.gz not found: the real-ComfyUI tests will be skipped" >&2; exit 0; }
  echo "provisioning ComfyUI 0.3.64 into $HOME_DIR (once; a few minutes)..." >&2
  rm -rf "$HOME_DIR"
  mkdir -p "$HOME_DIR"
  tar xzf "$tarball" -C "$HOME_DIR"
  "$PYTHON" -m venv "$HOME_DIR/venv"
  pip=("$HOME_DIR/venv/bin/python" -m pip install -q --disable-pip-version-check)
  # torchvision is a hard import of ComfyUI; both wheels lie on this machine's disk
  "${pip[@]}" torch==2.14.1 torchvision==0.29.1 >&2
  grep -v '^torchaudio' "$HOME_DIR/ComfyUI/requirements.txt" > "$HOME_DIR/requirements-comfyui.txt"
  # requests: imported by ComfyUI's frontend manager but missing from its requirements
  "${pip[@]}" -r "$HOME_DIR/requirements-comfyui.txt" requests -r requirements.txt >&2
  mkdir -p "$HOME_DIR/frontend"
  "$HOME_DIR/venv/bin/python" -m pip download -q --disable-pip-version-check --no-deps "$FRONTEND_SPEC" -d "$HOME_DIR/frontend" >&2
  (cd "$HOME_DIR/frontend" && "$HOME_DIR/venv/bin/python" -m zipfile -e comfyui_frontend_package-*.whl unpacked)
  touch "$HOME_DIR/.complete"
fi
# our own requirements may have grown since the cache was made
"$HOME_DIR/venv/bin/python" -m pip install -q --disable-pip-version-check -r requirements.txt >&2
echo "export COMFYUI_DIR='$HOME_DIR/ComfyUI'"
echo "export COMFYUI_PYTHON='$HOME_DIR/venv/bin/python'"
echo "export LM_FRONTEND_158='$HOME_DIR/frontend/unpacked/comfyui_frontend_package/static'"
