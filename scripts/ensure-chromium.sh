#!/usr/bin/env bash
# Installs Debian's chromium when no Chromium is found; the dashboard test
# drives it headless. Nothing is started here.
set -euo pipefail
for b in "${FUSEBOX_CHROMIUM:-}" chromium chromium-browser google-chrome; do
  if [ -n "$b" ] && command -v "$b" >/dev/null 2>&1; then exit 0; fi
done
echo "chromium is missing: installing Debian's chromium package" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
command -v chromium >/dev/null
