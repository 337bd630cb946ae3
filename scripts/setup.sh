#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine: the Debian libraries Qt needs offscreen,
# Prometheus (the tests scrape the panel with it), a virtualenv in .venv and the project
# installed into it (editable, with dev extras).
set -euo pipefail
cd "$(dirname "$0")/.."

QT_DEBS=(libegl1 libgl1 libglib2.0-0 libdbus-1-3 libfontconfig1 libfreetype6 libxkbcommon0
         fonts-dejavu-core)
# A real display additionally needs the xcb set; only asked for when one is present.
XCB_DEBS=(libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-randr0
          libxcb-render-util0 libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0)

want=("${QT_DEBS[@]}")
if [[ -n "${DISPLAY:-}" ]]; then want+=("${XCB_DEBS[@]}"); fi

missing=()
for pkg in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "setup: installing Debian packages: ${missing[*]}"
    sudo_cmd=()
    if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"
fi

# A real Prometheus scrapes the panel in tests/metrics: Debian's server when none is there,
# without its recommends (exporters, smartmontools: nothing the tests use).
if ! command -v prometheus >/dev/null; then
    echo "setup: installing Debian's prometheus"
    sudo_cmd=()
    if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
        prometheus
fi

PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
    echo "setup: creating .venv"
    "$PY" -m venv .venv
fi
# Reinstall only when the dependency list changed.
stamp=.venv/.setup-stamp
if [[ ! -f $stamp ]] || ! cmp -s pyproject.toml "$stamp"; then
    echo "setup: installing Python packages"
    .venv/bin/pip install -q --disable-pip-version-check -e ".[dev]"
    cp pyproject.toml "$stamp"
fi
