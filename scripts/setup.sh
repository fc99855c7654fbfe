#!/usr/bin/env bash
# Set up everything ser-live needs on this machine: OS packages (via apt where it exists),
# a virtual environment in .venv, and the Python packages pinned in requirements/constraints.txt.
# Usage: scripts/setup.sh [EXTRAS]   e.g. scripts/setup.sh dev,train
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"

APT_PACKAGES=(
  python3-venv libportaudio2 libsndfile1 libasound2-plugins
  libegl1 libgl1 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0
  libxcb-xinerama0 libxcb-randr0 libxcb-render-util0 libxcb-image0 libxcb-xkb1 libdbus-1-3 libfontconfig1
  libsm6 libice6
  fonts-dejavu-core
)
# libsm6/libice6: Qt 6.7's xcb plugin needs them (PyQt6 6.7 is the pin on arm64 bookworm, where a
# Pi OS Lite image lacks them: without them the window cannot open).
# The test suite also runs real PulseAudio, Xvfb and sox, and checks the service unit with systemd-analyze.
TEST_APT_PACKAGES=(pulseaudio pulseaudio-utils xvfb x11-utils sox systemd)

if command -v apt-get >/dev/null 2>&1; then
  packages=("${APT_PACKAGES[@]}")
  [[ "$extras" == *dev* ]] && packages+=("${TEST_APT_PACKAGES[@]}")
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
    echo "setup: installing OS packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  echo "setup: no apt-get here; install PortAudio and libsndfile with your package manager"
fi

python=${PYTHON:-python3}
[[ -x .venv/bin/python ]] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
spec="."
[[ -n "$extras" ]] && spec=".[${extras}]"
.venv/bin/python -m pip install -q -c requirements/constraints.txt -e "$spec"
