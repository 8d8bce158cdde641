#!/usr/bin/env bash
# Debian packages the project needs beyond pip, installed only when missing:
#   libgomp1  OpenMP runtime that LightGBM's wheel links against.
set -euo pipefail
pkgs=()
if ! ldconfig -p 2>/dev/null | grep -q 'libgomp\.so\.1'; then pkgs+=(libgomp1); fi
if [ ${#pkgs[@]} -eq 0 ]; then exit 0; fi
if ! command -v apt-get >/dev/null; then
  echo "system-deps: please install ${pkgs[*]} (no apt-get on this machine)" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends "${pkgs[@]}"
