#!/usr/bin/env bash
# Installs the headless browser the web front ends' browser tests drive, when missing:
#   chromium, chromium-driver (Debian packages; Playwright's Python package drives them through
#   executable_path, so no browser is downloaded from anywhere but the Debian mirror)
# Idempotent and quiet, like install-dicom-tools.sh: exits 0 with a message when apt is unavailable
# (the browser tests then skip with that reason).
set -u

if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-browser: apt-get not available; chromium missing (browser tests will skip)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "install-browser: not root and no password-less sudo; chromium missing (browser tests will skip)"
    exit 0
  fi
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-browser: installing chromium chromium-driver"
if ! $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-liberation >/dev/null 2>&1; then
  # a stale package index: refresh once and retry
  $SUDO apt-get update -qq >/dev/null 2>&1 || true
  if ! $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-liberation >/dev/null 2>&1; then
    echo "install-browser: apt-get install chromium failed (browser tests will skip)"
    exit 0
  fi
fi
command -v chromium >/dev/null 2>&1 || echo "install-browser: chromium still missing after installing it"
exit 0
