#!/usr/bin/env bash
# Creates the Python venv with a real Celery 5.x worker, and the other
# packages listed in .ci/test-requirements.txt, that the end-to-end tests
# run against. Idempotent: does nothing when the venv already has exactly
# those requirements installed.
#
# Usage: .ci/celery-venv.sh [VENV_DIR]   (default: .venv-celery in the repo)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${1:-"$here/.venv-celery"}
reqfile="$here/.ci/test-requirements.txt"
req=$(grep -v '^[[:space:]]*#' "$reqfile" | sed '/^[[:space:]]*$/d')
marker="$venv/.metronome-req"
if [ -x "$venv/bin/celery" ] && [ "$(cat "$marker" 2>/dev/null)" = "$req" ]; then
  exit 0
fi
python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null 2>&1; then
  echo "celery-venv: $python not found; install Python 3 (apt-get install python3 python3-venv)" >&2
  exit 1
fi
if ! "$python" -m venv "$venv"; then
  rm -rf "$venv"
  echo "celery-venv: cannot create a venv; install python3-venv" >&2
  exit 1
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqfile"
"$venv/bin/celery" --version
echo "$req" >"$marker"
