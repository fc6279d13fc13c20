#!/usr/bin/env bash
# napari-hcc set-up, for a fresh Debian machine with Python >= 3.11, as root.
#   bash scripts/setup.sh demo   install everything, open napari with the plugin docked and the sample scan
#   bash scripts/setup.sh test   install everything (plus Xvfb, Mesa GL, Qt xcb libraries), run the house
#                                checks (ruff check, ruff format --check, lint-imports) and all tests
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-demo}"
PY="${PYTHON:-python3}"

gui_system_packages() {
  # What napari needs to render under Xvfb: Mesa OpenGL, EGL and the xcb libraries of Qt 6.
  local pkgs="xvfb xauth libgl1 libgl1-mesa-dri libegl1 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4
    libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0
    libxcb-xfixes0 libxcb-xkb1 libdbus-1-3 libfontconfig1"
  local missing=""
  for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    echo "installing system packages:$missing"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  fi
}

case "$mode" in
  demo)
    "$PY" -m pip install --quiet --disable-pip-version-check ".[napari]"
    command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
    exec "$PY" -m napari_hcc view "${@:2}"
    ;;
  test)
    gui_system_packages
    # A regular (non-editable) install: the tests run against what a user gets, sample data included.
    "$PY" -m pip install --quiet --disable-pip-version-check ".[test]"
    command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
    # The house checks first (seconds): lint, format and the layers' contract; any finding fails the run.
    "$PY" -m ruff check src tests scripts benchmarks
    "$PY" -m ruff format --check src tests scripts benchmarks
    PYTHONPATH=src lint-imports
    cd tests  # import the installed package, not the source tree
    # One pytest-xdist worker per core, whole test files to a worker (module fixtures are made once);
    # tests/conftest.py gives each worker one thread.
    exec xvfb-run -a -s "-screen 0 1600x1000x24" "$PY" -m pytest -ra --durations=25 -p no:cacheprovider \
      -n auto --dist loadfile "${@:2}" .
    ;;
  *)
    echo "usage: bash scripts/setup.sh demo|test" >&2
    exit 2
    ;;
esac
