#!/usr/bin/env bash
# Debian packages the project needs beyond pip, installed only when missing:
#   libgomp1    OpenMP runtime that LightGBM's wheel links against.
#   postgresql  server binaries (initdb, pg_ctl, postgres) for the tuning tests' throwaway
#               cluster and multi-worker Optuna studies.
#   chromium    browser for the Playwright tests of the live app (they launch
#               /usr/bin/chromium; `playwright install` is never needed).
set -euo pipefail
pkgs=()
if ! ldconfig -p 2>/dev/null | grep -q 'libgomp\.so\.1'; then pkgs+=(libgomp1); fi
have_initdb=0
if command -v initdb >/dev/null 2>&1; then have_initdb=1; fi
for d in /usr/lib/postgresql/*/bin; do
  if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then have_initdb=1; fi
done
if [ "$have_initdb" -eq 0 ]; then pkgs+=(postgresql); fi
if [ ! -x /usr/bin/chromium ]; then pkgs+=(chromium); fi
if [ ${#pkgs[@]} -eq 0 ]; then exit 0; fi
if ! command -v apt-get >/dev/null; then
  echo "system-deps: please install ${pkgs[*]} (no apt-get on this machine)" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update
# postgresql's maintainer scripts would start a cluster service; the project only needs the binaries.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${pkgs[@]}"
